//! The `#!lua flags=...` first line of a script (`evalExtractShebangFlags`
//! in Redis 7.0's `eval.c`).

/// Flags a script declares in its shebang.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// `no-writes`: the script may not call write commands.
    pub no_writes: bool,
    /// `allow-stale`: a replica cut from its master runs the script even
    /// with `replica-serve-stale-data no`.
    pub allow_stale: bool,
    /// `allow-oom`: the script may write when memory is full.
    pub allow_oom: bool,
    /// The script has a shebang: its flags replace the command's (a
    /// script without one is checked command by command instead).
    pub declared: bool,
}

impl ScriptFlags {
    /// Whether the script is refused before it runs when memory is full
    /// (Redis's `scriptFlagsToCmdFlags`: declared flags without
    /// `allow-oom` or `no-writes` make the call `denyoom`).
    pub fn denies_oom(&self) -> bool {
        self.declared && !self.allow_oom && !self.no_writes
    }
}

/// The flags Redis 7.0 knows (`scripts_flags_def`).
const KNOWN_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Reads the shebang of `body`: its flags and the length of the shebang
/// line (without its newline; Lua compiles the rest, so lines keep their
/// numbers). A body without a shebang has no flags and length 0. The error
/// is Redis's reply text.
pub fn parse(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    flags.declared = true;
    let Some(len) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    // Split as Redis's `sdssplitargs` (quotes group), the flag list at
    // each comma, empty flags included (`flags=a,,b` names the flag "").
    let mut words = Vec::new();
    let line = body.get(..len).unwrap_or_default();
    if crate::resp::parser::split_args(line, &mut words).is_none() || words.is_empty() {
        return Err("ERR Invalid engine in script shebang".into());
    }
    let mut parts = words.iter().map(|w| String::from_utf8_lossy(w));
    let Some(engine) = parts.next() else {
        return Err("ERR Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        let flags_named = if list.is_empty() {
            Vec::new()
        } else {
            list.split(',').collect()
        };
        for flag in flags_named {
            if !KNOWN_FLAGS.contains(&flag) {
                return Err(format!("ERR Unexpected flag in script shebang: {flag}"));
            }
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-stale" => flags.allow_stale = true,
                "allow-oom" => flags.allow_oom = true,
                _ => {}
            }
        }
    }
    Ok((flags, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_and_length() {
        assert_eq!(parse(b"return 1"), Ok((ScriptFlags::default(), 0)));
        assert_eq!(
            parse(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((
                ScriptFlags {
                    no_writes: true,
                    allow_stale: false,
                    allow_oom: true,
                    declared: true,
                },
                31
            ))
        );
        assert_eq!(
            parse(b"#!lua flags=allow-stale\nreturn 1"),
            Ok((
                ScriptFlags {
                    no_writes: false,
                    allow_stale: true,
                    allow_oom: false,
                    declared: true,
                },
                23
            ))
        );
        assert_eq!(
            parse(b"#!lua flags=bad\n"),
            Err("ERR Unexpected flag in script shebang: bad".into())
        );
        assert_eq!(
            parse(b"#!python\n"),
            Err("ERR Unexpected engine in script shebang: #!python".into())
        );
        assert_eq!(parse(b"#!lua"), Err("ERR Invalid script shebang".into()));
    }
}
