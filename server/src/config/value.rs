//! Validation and canonical form of directive values, with Redis 7.0's
//! parsing rules and error texts (`config.c`, `memtoull`, `strtoll`).

use super::directives::{Check, Directive, Kind, NumFlags, Special};

/// Parses a memory value like Redis's `memtoull`: digits with an optional
/// unit `b`, `k`, `kb`, `m`, `mb`, `g`, `gb` (case-insensitive; `k` is 1000,
/// `kb` is 1024). As in Redis, an empty digit string counts as 0 and an
/// overflowing number wraps.
pub fn parse_memory(s: &str) -> Option<u64> {
    if s.starts_with('-') {
        return None;
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    // strtoull: saturates on overflow (ERANGE is not checked by memtoull).
    let v = if digits.is_empty() {
        0
    } else {
        digits.parse::<u64>().unwrap_or(u64::MAX)
    };
    Some(v.wrapping_mul(mul))
}

/// C's `strtoll(s, &end, base)` with the check `*end == '\0'`: leading
/// white space and a sign are allowed, overflow saturates (unless
/// `fail_on_overflow`), and an empty string is 0.
pub fn strtoll_full(s: &str, radix: u32, fail_on_overflow: bool) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..).unwrap_or_default()),
        Some(b'+') => (false, t.get(1..).unwrap_or_default()),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).unwrap_or(u128::MAX);
    let v: i128 = if neg {
        -(magnitude.min(1 << 64) as i128)
    } else {
        magnitude.min(1 << 64) as i128
    };
    if v > i64::MAX as i128 || v < i64::MIN as i128 {
        if fail_on_overflow {
            return None;
        }
        return Some(if neg { i64::MIN } else { i64::MAX });
    }
    Some(v as i64)
}

/// Redis's `string2ll`: strict decimal.
fn string2ll(s: &str) -> Option<i64> {
    crate::cmd::args::parse_i64(s.as_bytes())
}

/// `%f` with trailing zeros (and a trailing dot) removed, like Redis's `trimDoubleString`.
pub fn format_trimmed(v: f64) -> String {
    let s = format!("{v:.6}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The text of an OS error without Rust's "(os error N)" suffix, like `strerror`.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s.get(..i).unwrap_or_default().to_string(),
        None => s,
    }
}

fn numeric(
    s: &str,
    min: i128,
    max: i128,
    unsigned: bool,
    flags: NumFlags,
) -> Result<String, String> {
    let mut parsed: Option<i64> = None;
    if flags.has(NumFlags::MEMORY) {
        parsed = parse_memory(s).map(|v| v as i64);
    }
    if parsed.is_none() && flags.has(NumFlags::PERCENT) && s.len() > 1 && s.ends_with('%') {
        if let Some(v) = string2ll(s.get(..s.len() - 1).unwrap_or_default()) {
            if v >= 0 {
                parsed = Some(-v);
            }
        }
    }
    if parsed.is_none() && flags.has(NumFlags::OCTAL) {
        parsed = strtoll_full(s, 8, true);
    }
    if parsed.is_none() && flags.is_plain() {
        parsed = string2ll(s);
    }
    let Some(v) = parsed else {
        return Err(
            if flags.has(NumFlags::MEMORY) && flags.has(NumFlags::PERCENT) {
                "argument must be a memory or percent value"
            } else if flags.has(NumFlags::MEMORY) {
                "argument must be a memory value"
            } else if flags.has(NumFlags::OCTAL) {
                "argument couldn't be parsed as an octal number"
            } else {
                "argument couldn't be parsed into an integer"
            }
            .into(),
        );
    };
    if unsigned {
        let u = v as u64 as i128;
        if u > max || u < min {
            return Err(if flags.has(NumFlags::OCTAL) {
                format!("argument must be between {min:o} and {max:o} inclusive")
            } else {
                format!("argument must be between {min} and {max} inclusive")
            });
        }
    } else if flags.has(NumFlags::PERCENT) && v < 0 {
        if (v as i128) < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
    } else if (v as i128) > max || (v as i128) < min {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(if flags.has(NumFlags::PERCENT) && v < 0 {
        format!("{}%", -(v as i128))
    } else if flags.has(NumFlags::MEMORY) {
        (v as u64).to_string()
    } else if flags.has(NumFlags::OCTAL) {
        format!("{v:o}")
    } else {
        v.to_string()
    })
}

/// The names of an enum value, as Redis's `configEnumGetName`.
fn enum_name(values: &[(&str, i32)], v: i32, bitflags: bool) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut unmatched = v;
    for &(name, val) in values {
        if v == val {
            return name.to_string();
        }
        if bitflags && val != 0 && val == (unmatched & val) {
            names.push(name);
            unmatched &= !val;
        }
    }
    if names.is_empty() || unmatched != 0 {
        return "unknown".into();
    }
    names.join(" ")
}

fn check_string(check: Check, v: &str) -> Result<(), String> {
    let base_name = !v.contains('/') && !v.contains('\\');
    match check {
        Check::None | Check::ShutdownFlags => Ok(()),
        Check::DbFilename if !base_name => {
            Err("dbfilename can't be a path, just a filename".into())
        }
        Check::AofFilename if v.is_empty() => Err("appendfilename can't be empty".into()),
        Check::AofFilename if !base_name => {
            Err("appendfilename can't be a path, just a filename".into())
        }
        Check::AofDirname if v.is_empty() => Err("appenddirname can't be empty".into()),
        Check::AofDirname if !base_name => {
            Err("appenddirname can't be a path, just a dirname".into())
        }
        Check::Hostname if v.len() >= 256 => {
            Err("Hostnames must be less than 256 characters".into())
        }
        Check::Hostname => {
            // Redis's loop checks every character but the first twice and the
            // first... as written: c = val[i++] after the check, so val[0] is
            // checked twice and the last character is checked too.
            if v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            {
                Ok(())
            } else {
                Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into())
            }
        }
        Check::ProcTitle if !proc_title_ok(v) => {
            Err("template format is invalid or contains unknown variables".into())
        }
        _ => Ok(()),
    }
}

/// Redis's `validateProcTitleTemplate`: every `{variable}` known, braces
/// balanced, and a non-empty result.
fn proc_title_ok(t: &str) -> bool {
    const VARS: &[&str] = &[
        "title",
        "listen-addr",
        "server-mode",
        "config-file",
        "port",
        "tls-port",
        "unixsocket",
    ];
    let b = t.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'{') if b.get(i + 1) == Some(&b'{') => {
                out.push('{');
                i += 2;
            }
            Some(b'}') if b.get(i + 1) == Some(&b'}') => {
                out.push('}');
                i += 2;
            }
            Some(b'{') => {
                let Some(end) = t.get(i + 1..).and_then(|r| r.find('}')) else {
                    return false;
                };
                let var = t.get(i + 1..i + 1 + end).unwrap_or_default();
                if !VARS.contains(&var) {
                    return false;
                }
                // "title" is empty during validation, "server-mode" is empty
                // outside cluster/sentinel; the others are never empty.
                if var != "title" && var != "server-mode" {
                    out.push('x');
                }
                i += end + 2;
            }
            Some(b'}') => return false,
            Some(&c) => {
                out.push(c as char);
                i += 1;
            }
            None => break,
        }
    }
    !out.trim_matches(' ').is_empty()
}

fn client_class(name: &str) -> Option<usize> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Some(0),
        "slave" | "replica" => Some(1),
        "pubsub" => Some(2),
        _ => None,
    }
}

const NOTIFY_LETTERS: &[(char, u32)] = &[
    ('K', 1),
    ('E', 1 << 1),
    ('g', 1 << 2),
    ('$', 1 << 3),
    ('l', 1 << 4),
    ('s', 1 << 5),
    ('h', 1 << 6),
    ('z', 1 << 7),
    ('x', 1 << 8),
    ('e', 1 << 9),
    ('t', 1 << 10),
    ('m', 1 << 11),
    ('d', 1 << 13),
    ('n', 1 << 14),
];
const NOTIFY_ALL: u32 = (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 10)
    | (1 << 13);

/// Parses `notify-keyspace-events` letters into flags (None on a bad letter).
pub fn notify_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        if c == 'A' {
            flags |= NOTIFY_ALL;
        } else {
            flags |= NOTIFY_LETTERS.iter().find(|(l, _)| *l == c)?.1;
        }
    }
    Some(flags)
}

/// The canonical letters of `notify-keyspace-events` flags.
pub fn notify_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & NOTIFY_ALL == NOTIFY_ALL {
        s.push('A');
    } else {
        for c in ['g', '$', 'l', 's', 'h', 'z', 'x', 'e', 't', 'd', 'n'] {
            if let Some((_, f)) = NOTIFY_LETTERS.iter().find(|(l, _)| *l == c) {
                if flags & f != 0 {
                    s.push(c);
                }
            }
        }
    }
    for (c, f) in [('K', 1), ('E', 2), ('m', 1 << 11)] {
        if flags & f != 0 {
            s.push(c);
        }
    }
    s
}

fn one<'a>(args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [a] => Ok(a),
        _ => Err("wrong number of arguments".into()),
    }
}

/// Where a value is being set from: decides the checks that depend on the
/// moment (`dir` must exist at run time, not before start-up creates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A config file, the environment or the command line.
    Startup,
    /// `CONFIG SET`.
    Runtime,
}

/// Checks `args` against the directive's kind and returns the canonical text
/// (what `CONFIG GET` will show). `current` is the directive's current value
/// (for directives set in parts, like `client-output-buffer-limit`).
pub fn canonical(
    d: &Directive,
    args: &[&str],
    current: &str,
    source: Source,
) -> Result<String, String> {
    match d.kind {
        Kind::Bool => {
            let a = one(args)?;
            if a.eq_ignore_ascii_case("yes") {
                Ok("yes".into())
            } else if a.eq_ignore_ascii_case("no") {
                Ok("no".into())
            } else {
                Err("argument must be 'yes' or 'no'".into())
            }
        }
        Kind::Num {
            min,
            max,
            unsigned,
            flags,
        } => numeric(one(args)?, min, max, unsigned, flags),
        Kind::Enum { values, check } => {
            let bitflags = d.multi_arg();
            let mut v: Option<i32> = None;
            if !args.is_empty() && (bitflags || args.len() == 1) {
                let mut acc = 0;
                let mut ok = true;
                for a in args {
                    let mut matched = false;
                    for &(name, val) in values {
                        if name.eq_ignore_ascii_case(a) {
                            acc |= val;
                            matched = true;
                        }
                    }
                    ok &= matched;
                }
                if ok {
                    v = Some(acc);
                }
            }
            let Some(v) = v else {
                let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
                let mut msg = format!(
                    "argument(s) must be one of the following: {}",
                    names.join(", ")
                );
                msg.truncate(255);
                return Err(msg);
            };
            if check == Check::ShutdownFlags && v & 1 != 0 && v & 2 != 0 {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            Ok(enum_name(values, v, bitflags))
        }
        Kind::Str(check) => {
            let a = one(args)?;
            check_string(check, a)?;
            Ok(a.to_string())
        }
        Kind::Special(s) => special(s, args, current, source),
    }
}

fn special(s: Special, args: &[&str], current: &str, source: Source) -> Result<String, String> {
    match s {
        Special::Dir => {
            let a = one(args)?;
            if source == Source::Runtime {
                match std::fs::metadata(a) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(strerror(&std::io::Error::from_raw_os_error(libc::ENOTDIR)))
                    }
                    Err(e) => return Err(strerror(&e)),
                }
                return Ok(absolute(a));
            }
            Ok(a.to_string())
        }
        Special::Save => {
            let args: &[&str] = if args.len() == 1 && args.first() == Some(&"") {
                &[]
            } else {
                args
            };
            if args.len() % 2 == 1 {
                return Err("Invalid save parameters".into());
            }
            let mut out = Vec::new();
            for (j, a) in args.iter().enumerate() {
                let v = strtoll_full(a, 10, false).ok_or("Invalid save parameters")?;
                if (j % 2 == 0 && v < 1) || (j % 2 == 1 && v < 0) {
                    return Err("Invalid save parameters".into());
                }
                out.push(if j % 2 == 0 {
                    v.to_string()
                } else {
                    (v as i32).to_string()
                });
            }
            Ok(out.join(" "))
        }
        Special::ClientOutputBufferLimit => {
            if args.len() & 3 != 0 {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut classes: Vec<[String; 3]> = current
                .split(' ')
                .collect::<Vec<_>>()
                .chunks(4)
                .map(|c| {
                    [
                        c.get(1).unwrap_or(&"0").to_string(),
                        c.get(2).unwrap_or(&"0").to_string(),
                        c.get(3).unwrap_or(&"0").to_string(),
                    ]
                })
                .collect();
            classes.resize(3, ["0".into(), "0".into(), "0".into()]);
            let mut updates = Vec::new();
            for c in args.chunks(4) {
                let class = client_class(c.first().copied().unwrap_or_default())
                    .ok_or("Invalid client class specified in buffer limit configuration.")?;
                let bad =
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
                let hard = parse_memory(c.get(1).copied().unwrap_or_default()).ok_or(bad)?;
                let soft = parse_memory(c.get(2).copied().unwrap_or_default()).ok_or(bad)?;
                let secs =
                    strtoll_full(c.get(3).copied().unwrap_or_default(), 10, false).ok_or(bad)?;
                // `int soft_seconds = strtoll(...)`: truncated, then checked.
                let secs = secs as i32;
                if secs < 0 {
                    return Err(bad.into());
                }
                updates.push((
                    class,
                    [hard.to_string(), soft.to_string(), secs.to_string()],
                ));
            }
            for (class, v) in updates {
                if let Some(slot) = classes.get_mut(class) {
                    *slot = v;
                }
            }
            Ok(["normal", "slave", "pubsub"]
                .iter()
                .zip(classes.iter())
                .map(|(n, [h, s, t])| format!("{n} {h} {s} {t}"))
                .collect::<Vec<_>>()
                .join(" "))
        }
        Special::OomScoreAdjValues => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::new();
            for a in args {
                match strtoll_full(a, 10, false) {
                    Some(v) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
                    _ => return Err(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                            .into(),
                    ),
                }
            }
            Ok(out.join(" "))
        }
        Special::NotifyKeyspaceEvents => {
            let a = one(args)?;
            notify_flags(a)
                .map(notify_string)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        }
        Special::Bind => {
            if args.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            if args.len() == 1 && args.first() == Some(&"") {
                return Ok(String::new());
            }
            Ok(args.join(" "))
        }
        Special::Replicaof => {
            let [host, port] = args else {
                return Err("wrong number of arguments".into());
            };
            if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
                return Ok(String::new());
            }
            match strtoll_full(port, 10, false) {
                Some(p) if (0..=65535).contains(&p) => Ok(format!("{host} {p}")),
                _ => Err("Invalid master port".into()),
            }
        }
        Special::LatencyTrackingInfoPercentiles => {
            if args.len() == 1 && args.first() == Some(&"") {
                return Ok(String::new());
            }
            let mut out = Vec::new();
            for a in args {
                let v = crate::cmd::args::parse_f64(a.as_bytes())
                    .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(
                        "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                            .into(),
                    );
                }
                out.push(format_trimmed(v));
            }
            Ok(out.join(" "))
        }
    }
}

/// An absolute form of a path (relative paths are taken from the current directory).
pub fn absolute(p: &str) -> String {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c.display().to_string();
    }
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => {
            let mut out = cwd;
            for comp in path.components() {
                match comp {
                    std::path::Component::CurDir => {}
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    c => out.push(c),
                }
            }
            out.display().to_string()
        }
        Err(_) => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::directive;

    fn set(name: &str, v: &str) -> Result<String, String> {
        let d = directive(name).expect("directive");
        let current = crate::config::directives::default_of(d);
        let args: Vec<&str> = if d.multi_arg() {
            if v.is_empty() {
                vec![]
            } else {
                v.split(' ').collect()
            }
        } else {
            vec![v]
        };
        canonical(d, &args, current, Source::Runtime)
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2gb"), Some(2 << 30));
        assert_eq!(parse_memory("-1"), None);
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory(""), Some(0));
        assert_eq!(parse_memory("mb"), Some(0));
        assert_eq!(parse_memory(" 1"), None);
    }

    #[test]
    fn strtoll_like_c() {
        assert_eq!(strtoll_full("", 10, false), Some(0));
        assert_eq!(strtoll_full(" +12", 10, false), Some(12));
        assert_eq!(strtoll_full("12 ", 10, false), None);
        assert_eq!(strtoll_full("-", 10, false), None);
        assert_eq!(
            strtoll_full("99999999999999999999", 10, false),
            Some(i64::MAX)
        );
        assert_eq!(strtoll_full("99999999999999999999", 8, true), None);
        assert_eq!(strtoll_full("777", 8, true), Some(511));
    }

    #[test]
    fn kinds_and_errors() {
        assert_eq!(set("appendonly", "YES").as_deref(), Ok("yes"));
        assert_eq!(
            set("appendonly", "1"),
            Err("argument must be 'yes' or 'no'".into())
        );
        assert_eq!(set("maxmemory", "1gb").as_deref(), Ok("1073741824"));
        assert_eq!(
            set("maxmemory", "-1"),
            Err("argument must be a memory value".into())
        );
        assert_eq!(
            set("maxclients", "0"),
            Err("argument must be between 1 and 4294967295 inclusive".into())
        );
        assert_eq!(
            set("hz", "x"),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            set("maxmemory-clients", "-5"),
            Err("argument must be a memory or percent value".into())
        );
        assert_eq!(set("maxmemory-clients", "10%").as_deref(), Ok("10%"));
        assert_eq!(
            set("maxmemory-clients", "101%"),
            Err("percentage argument must be less or equal to 100".into())
        );
        assert_eq!(
            set("set-max-intset-entries", "-1"),
            Err("argument must be between 0 and 9223372036854775807 inclusive".into())
        );
        assert_eq!(set("oom-score-adj", "relative").as_deref(), Ok("yes"));
        assert_eq!(
            set("shutdown-on-sigint", "now save").as_deref(),
            Ok("save now")
        );
        assert_eq!(
            set("shutdown-on-sigint", "save nosave"),
            Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into())
        );
        assert_eq!(
            set("maxmemory-policy", "lru"),
            Err("argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".into())
        );
        assert_eq!(set("save", "").as_deref(), Ok(""));
        assert_eq!(set("save", "100 10 20 0").as_deref(), Ok("100 10 20 0"));
        assert_eq!(set("save", "0 10"), Err("Invalid save parameters".into()));
        assert_eq!(set("save", "10"), Err("Invalid save parameters".into()));
        assert_eq!(
            set("client-output-buffer-limit", "pubsub 1mb 2mb 3").as_deref(),
            Ok("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3")
        );
        assert_eq!(
            set("client-output-buffer-limit", "master 1 1 1"),
            Err("Invalid client class specified in buffer limit configuration.".into())
        );
        assert_eq!(set("notify-keyspace-events", "KEA").as_deref(), Ok("AKE"));
        assert_eq!(set("notify-keyspace-events", "Ex$").as_deref(), Ok("$xE"));
        assert_eq!(
            set("notify-keyspace-events", "Q"),
            Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into())
        );
        assert_eq!(
            set("latency-tracking-info-percentiles", "50 99.90").as_deref(),
            Ok("50 99.9")
        );
        assert_eq!(
            set("dbfilename", "a/b"),
            Err("dbfilename can't be a path, just a filename".into())
        );
        assert_eq!(
            set("proc-title-template", "{nope}"),
            Err("template format is invalid or contains unknown variables".into())
        );
        assert!(set("proc-title-template", "{title} {listen-addr}").is_ok());
        assert_eq!(
            set("dir", "/nonexistent/amber"),
            Err("No such file or directory".into())
        );
    }
}
