//! Running Redis's own command-line clients against a server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The output of a finished tool.
#[derive(Debug)]
pub struct ToolOutput {
    /// Exit code (None: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `program args`, feeding it no input, killing it after `limit`.
pub fn run_tool(program: &str, args: &[&str], limit: Duration) -> ToolOutput {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    // Drain the pipes on threads so a chatty tool cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ToolOutput {
        code,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned(),
    }
}

/// `redis-cli -p port args...` (non-interactive).
pub fn redis_cli(port: u16, args: &[&str]) -> ToolOutput {
    let p = port.to_string();
    let mut all = vec!["-p", p.as_str()];
    all.extend_from_slice(args);
    run_tool("redis-cli", &all, Duration::from_secs(30))
}

/// Runs `redis-check-rdb` on `file`, asserts it accepts the file ("RDB
/// looks OK", exit 0) and returns its output.
pub fn check_rdb(file: &Path) -> ToolOutput {
    let out = run_tool(
        "redis-check-rdb",
        &[file.to_str().expect("path")],
        Duration::from_secs(60),
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.code,
        Some(0),
        "redis-check-rdb refused {}:\n{all}",
        file.display()
    );
    assert!(all.contains("RDB looks OK"), "{all}");
    out
}
