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

fn apply_lines(config: &Config, source: &str, lines: &[String]) -> Result<(), ConfigLoadError> {
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
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
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        if super::directive(&name).is_none() || values.is_empty() {
            return Err(fail("Bad directive or wrong number of arguments".into()));
        }
        config.set(&name, &values, true).map_err(fail)?;
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
        apply_lines(&config, &format!("file {}", path.display()), &lines)?;
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
    apply_lines(&config, "the environment", &env_lines)?;
    apply_lines(&config, "the command line", &args_to_lines(args))?;
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
    }
}
