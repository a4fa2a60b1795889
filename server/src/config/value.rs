//! Validation and canonical form of directive values, with Redis's error texts.

use super::directives::{Directive, Kind};

/// Parses a memory value like Redis's `memtoull`: digits with an optional
/// unit `b`, `k`, `kb`, `m`, `mb`, `g`, `gb` (case-insensitive; `k` is 1000,
/// `kb` is 1024).
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mul)
}

fn one_arg(args: &[&[u8]]) -> Result<String, String> {
    match args {
        [a] => Ok(String::from_utf8_lossy(a).into_owned()),
        _ => Err("wrong number of arguments".into()),
    }
}

/// Checks `args` against the directive's kind and returns the canonical text.
pub fn canonical(d: &Directive, args: &[&[u8]]) -> Result<String, String> {
    match d.kind {
        Kind::Bool => match one_arg(args)?.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            let s = one_arg(args)?;
            let v: i64 = s
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Memory { min, max } => {
            let s = one_arg(args)?;
            let v =
                parse_memory(&s).ok_or_else(|| "argument must be a memory value".to_string())?;
            let v = i64::try_from(v).map_err(|_| "argument must be a memory value".to_string())?;
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Enum(options) => {
            let s = one_arg(args)?.to_ascii_lowercase();
            if options.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    options.join(", ")
                ))
            }
        }
        Kind::Str => one_arg(args),
        Kind::List => Ok(args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory(""), None);
    }
}
