//! Byte sizes as people and Redis write them (`64mb`, `1gb`, `512k`).

/// One kibibyte.
pub const KIB: u64 = 1024;
/// One mebibyte.
pub const MIB: u64 = 1024 * KIB;
/// One gibibyte.
pub const GIB: u64 = 1024 * MIB;

/// Parses a size like `64mb`, `64m`, `1gb`, `512kb` or `4096` (bytes), as
/// `redis.conf` does (the units are powers of 1024 here; Redis's `1m` is 10^6,
/// a difference nobody sizing a benchmark cares about).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad size {text:?}: expected a number with an optional unit"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => return Err(format!("bad size unit {other:?} in {text:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Formats a byte count for a Redis-style command line (`64mb`, `1536kb`, `100`).
pub fn redis_size(bytes: u64) -> String {
    if bytes >= GIB && bytes & (GIB - 1) == 0 {
        format!("{}gb", bytes / GIB)
    } else if bytes >= MIB && bytes & (MIB - 1) == 0 {
        format!("{}mb", bytes / MIB)
    } else if bytes >= KIB && bytes & (KIB - 1) == 0 {
        format!("{}kb", bytes / KIB)
    } else {
        bytes.to_string()
    }
}

/// Formats a byte count for humans (`64.0 MiB`).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        assert_eq!(parse_size("64mb").unwrap(), 64 * MIB);
        assert_eq!(parse_size("1G").unwrap(), GIB);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5tb").is_err());
        assert_eq!(redis_size(64 * MIB), "64mb");
        assert_eq!(redis_size(1536 * KIB), "1536kb");
        assert_eq!(redis_size(GIB), "1gb");
        assert_eq!(redis_size(100), "100");
    }
}
