//! Loading configuration like `redis-server [CONFIG_FILE] [--directive value ...]`.
//!
//! Sources apply in order: the file, then `AMBER_<DIRECTIVE>` environment
//! variables (`AMBER_DRAM_BUDGET=64mb`, for containers), then the command
//! line. A bad line stops start-up with a message naming the source, line
//! and directive, in Redis's format.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Config;
use crate::resp::parser::split_args;

/// A configuration error that stops start-up.
#[derive(Debug)]
pub struct ConfigLoadError {
    /// Where the bad line came from (file path, "environment", "command line").
    pub source: String,
    /// 1-based line number within the source.
    pub line: usize,
    /// The offending line as written.
    pub text: String,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for ConfigLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (Amber {}) ***",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(
            f,
            "Reading the configuration from {}, at line {}",
            self.source, self.line
        )?;
        writeln!(f, ">>> '{}'", self.text)?;
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for ConfigLoadError {}

/// Turns command-line arguments into config lines: each `--name` starts a
/// line, the arguments after it are its values (quoted so spaces survive).
fn args_to_lines(args: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for a in args {
        if let Some(name) = a.strip_prefix("--") {
            lines.push(name.to_string());
        } else if let Some(last) = lines.last_mut() {
            last.push(' ');
            last.push_str(&quote(a));
        } else {
            // A value before any --name: Redis treats it as a bad directive line.
            lines.push(quote(a));
        }
    }
    lines
}

fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Directives Redis 7.0 still accepts in files and ignores.
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// Loading state shared by every source (file, environment, command line),
/// which Redis reads as one text.
#[derive(Default)]
struct LoadState {
    /// Whether a `save` line was seen: the first one replaces the default
    /// save points, later ones add to them (Redis's behaviour).
    save_loaded: bool,
    /// `user` lines, checked and applied at start-up ([`super::UserLine`]).
    users: Vec<super::UserLine>,
}

fn apply_lines(
    config: &Config,
    state: &mut LoadState,
    source: &str,
    lines: &[String],
) -> Result<(), ConfigLoadError> {
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_matches([' ', '\t', '\r', '\n']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fail = |reason: String| ConfigLoadError {
            source: source.to_string(),
            line: i + 1,
            text: trimmed.to_string(),
            reason,
        };
        let mut argv = Vec::new();
        split_args(trimmed.as_bytes(), &mut argv)
            .ok_or_else(|| fail("Unbalanced quotes in configuration line".into()))?;
        let Some((name, values)) = argv.split_first() else {
            continue;
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name == "user" && !values.is_empty() {
            let line = super::UserLine {
                source: source.to_string(),
                line: i + 1,
                text: trimmed.to_string(),
                args: argv.clone(),
            };
            // A user is defined once (`ACLAppendUserForLoading`).
            if state.users.iter().any(|u| u.args.get(1) == argv.get(1)) {
                return Err(line.error(
                    1,
                    "Duplicate user found. A user can only be defined once in config files",
                ));
            }
            state.users.push(line);
            continue;
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        let Some(d) = super::directive(&name) else {
            if DEPRECATED.contains(&name.as_str()) && values.len() == 1 {
                continue;
            }
            if name == "include" && values.len() == 1 {
                let path = values.first().cloned().unwrap_or_default();
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    fail(format!(
                        "Fatal error, can't open config file '{path}': {}",
                        super::value::strerror(&e)
                    ))
                })?;
                let lines: Vec<String> = text.lines().map(str::to_string).collect();
                apply_lines(config, state, &format!("file {path}"), &lines)?;
                continue;
            }
            return Err(fail("Bad directive or wrong number of arguments".into()));
        };
        if !d.multi_arg() && values.len() != 1 {
            return Err(fail("wrong number of arguments".into()));
        }
        // A multi-argument directive given one non-empty argument is split
        // (so `--save "60 100"` works like `save 60 100`).
        let mut split = Vec::new();
        let args: Vec<&str> = match values.as_slice() {
            [one] if d.multi_arg() && !one.is_empty() => {
                split_args(one.as_bytes(), &mut split)
                    .ok_or_else(|| fail("Unbalanced quotes in configuration line".into()))?;
                split
                    .iter()
                    .map(|a| std::str::from_utf8(a).unwrap_or_default())
                    .collect()
            }
            _ => values.iter().map(String::as_str).collect(),
        };
        let canonical = config
            .check_value(d, &args, super::Source::Startup)
            .map_err(fail)?;
        if d.name == "save" && state.save_loaded && !(args.len() == 1 && args.first() == Some(&""))
        {
            config.append_save(&canonical);
        } else {
            config.store(d, canonical);
        }
        if d.name == "save" {
            state.save_loaded = true;
        }
    }
    Ok(())
}

/// Builds the configuration from an optional file, the environment and the
/// command-line arguments (everything after the optional file path).
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    args: &[String],
) -> Result<Config, ConfigLoadError> {
    let mut config = Config::default();
    let mut state = LoadState::default();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigLoadError {
            source: path.display().to_string(),
            line: 0,
            text: String::new(),
            reason: format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            ),
        })?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        apply_lines(
            &config,
            &mut state,
            &format!("file {}", path.display()),
            &lines,
        )?;
        config.file = Some(PathBuf::from(path));
    }
    let env_lines: Vec<String> = env
        .iter()
        .filter_map(|(k, v)| {
            let name = k
                .strip_prefix("AMBER_")?
                .to_ascii_lowercase()
                .replace('_', "-");
            super::directive(&name).map(|_| format!("{name} {}", quote(v)))
        })
        .collect();
    apply_lines(&config, &mut state, "the environment", &env_lines)?;
    apply_lines(
        &config,
        &mut state,
        "the command line",
        &args_to_lines(args),
    )?;
    config.users = state.users;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_and_errors() {
        let args: Vec<String> = ["--port", "7000", "--save", "", "--bind", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = load(None, &[], &args).expect("valid");
        assert_eq!(c.get("port").as_deref(), Some("7000"));
        assert_eq!(c.get("save").as_deref(), Some(""));
        assert_eq!(c.get("bind").as_deref(), Some("127.0.0.1 ::1"));
        let bad: Vec<String> = ["--port", "abc"].iter().map(|s| s.to_string()).collect();
        let e = load(None, &[], &bad).err().expect("invalid");
        assert_eq!(e.reason, "argument couldn't be parsed into an integer");
        assert!(e.to_string().contains(">>> 'port \"abc\"'"));
        let env = vec![("AMBER_DRAM_BUDGET".to_string(), "64mb".to_string())];
        let c = load(None, &env, &[]).expect("valid");
        assert_eq!(c.get("dram-budget").as_deref(), Some("67108864"));
        let args: Vec<String> = [
            "--save",
            "60 100",
            "--save",
            "300",
            "10",
            "--slaveof",
            "no",
            "one",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = load(None, &[], &args).expect("valid");
        assert_eq!(c.get("save").as_deref(), Some("60 100 300 10"));
        let bad: Vec<String> = ["--maxmemory", "1", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = load(None, &[], &bad).err().expect("invalid");
        assert_eq!(e.reason, "wrong number of arguments");
        let bad: Vec<String> = ["--nosuch", "1"].iter().map(|s| s.to_string()).collect();
        let e = load(None, &[], &bad).err().expect("invalid");
        assert_eq!(e.reason, "Bad directive or wrong number of arguments");
        let bad: Vec<String> = ["--save", "0", "1"].iter().map(|s| s.to_string()).collect();
        let e = load(None, &[], &bad).err().expect("invalid");
        assert_eq!(e.reason, "Invalid save parameters");
    }
}
