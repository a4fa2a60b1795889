//! `MONITOR`: the clients that watch every command, and the lines they get.
//!
//! A monitor's lines go through its pub/sub [`Mailbox`]: the connection that
//! runs a command appends the line and wakes the monitor's task, on whichever
//! connection thread it lives, exactly as `PUBLISH` delivers messages. A
//! monitor's own commands go straight into its reply buffer, after their
//! reply, as in Redis.
//!
//! Like Redis 7.0 (`call()` in `server.c`, `replicationFeedMonitors` in
//! `replication.c`), a command is fed after it ran (so `SELECT 3` shows
//! database 3), with the arguments the client sent, passwords redacted
//! (`redactClientCommandArgument`); commands flagged `admin` are never
//! shown, and the scripting commands (`skip_monitor`) are shown before they
//! run so the commands of the script follow them. Commands refused before
//! they run (unknown, arity, ...) are not shown.
//!
//! When nobody monitors, the cost is one relaxed atomic load per command
//! ([`Monitors::active`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::client::ClientHandle;
use crate::pubsub::Mailbox;
use crate::resp::ReplyWriter;

/// Who ran a command, as a monitor line shows it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A client connection: its peer address.
    Client(&'a ClientHandle),
    /// A script's `redis.call` (`lua`).
    Script,
}

/// Every monitoring client.
#[derive(Debug, Default)]
pub struct Monitors {
    /// Number of monitors: the only thing a command reads when it is 0.
    count: AtomicUsize,
    list: RwLock<Vec<Arc<Mailbox>>>,
}

impl Monitors {
    /// Whether any client monitors (one relaxed load).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// Number of monitoring clients.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no client monitors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a client's mailbox; false if it already monitors.
    pub fn add(&self, mailbox: &Arc<Mailbox>) -> bool {
        let mut list = self.list.write();
        if list.iter().any(|m| m.client_id() == mailbox.client_id()) {
            return false;
        }
        list.push(mailbox.clone());
        self.count.store(list.len(), Ordering::Relaxed);
        true
    }

    /// Forgets the client `id` (disconnection, `RESET`); false if it did
    /// not monitor.
    pub fn remove(&self, id: u64) -> bool {
        let mut list = self.list.write();
        let before = list.len();
        list.retain(|m| m.client_id() != id);
        self.count.store(list.len(), Ordering::Relaxed);
        list.len() != before
    }

    /// Sends the line of a command run in database `db` to every monitor.
    /// The monitor `me` (if given) gets it in its own reply buffer `out`.
    /// `limits` are the replica class's output buffer limits (a monitor is a
    /// replica to Redis).
    pub fn feed(
        &self,
        origin: Origin<'_>,
        db: usize,
        args: &[&[u8]],
        limits: &dyn Fn() -> (u64, u64, u64),
        me: Option<(u64, &mut ReplyWriter)>,
    ) {
        let line = format_line(SystemTime::now(), origin, db, &redacted(args));
        let list = self.list.read();
        let mut own = me;
        for mb in list.iter() {
            match own.as_mut() {
                Some((id, out)) if *id == mb.client_id() => out.message(|w| w.raw(&line)),
                _ => mb.post(&line, limits),
            }
        }
    }
}

/// The text Redis puts in place of a secret argument.
const REDACTED: &[u8] = b"(redacted)";

/// The arguments as a monitor sees them: the passwords of `AUTH`,
/// `HELLO ... AUTH` and `MIGRATE ... AUTH`/`AUTH2` replaced, where Redis
/// 7.0's `authCommand`, `helloCommand` and `migrateCommand` redact them
/// (only once the arguments parsed that far).
pub fn redacted<'a>(args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut shown = args.to_vec();
    let name = args.first().copied().unwrap_or_default();
    if name.eq_ignore_ascii_case(b"auth") {
        if args.len() <= 3 {
            for a in shown.iter_mut().skip(1) {
                *a = REDACTED;
            }
        }
    } else if name.eq_ignore_ascii_case(b"hello") {
        redact_hello(&mut shown);
    } else if name.eq_ignore_ascii_case(b"migrate") {
        redact_migrate(&mut shown);
    }
    shown
}

/// `migrateCommand`'s options, read until `KEYS` or one not understood:
/// `AUTH`'s password and `AUTH2`'s user name and password are redacted.
fn redact_migrate(args: &mut [&[u8]]) {
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j).copied().unwrap_or_default();
        let secrets = if opt.eq_ignore_ascii_case(b"copy") || opt.eq_ignore_ascii_case(b"replace") {
            0
        } else if opt.eq_ignore_ascii_case(b"auth") && more >= 1 {
            1
        } else if opt.eq_ignore_ascii_case(b"auth2") && more >= 2 {
            2
        } else {
            return;
        };
        for k in j + 1..=j + secrets {
            if let Some(a) = args.get_mut(k) {
                *a = REDACTED;
            }
        }
        j += secrets + 1;
    }
}

/// `helloCommand`: the version must be 2 or 3, then options are read
/// until one is not understood; each `AUTH user pass` is redacted.
fn redact_hello(args: &mut [&[u8]]) {
    let mut j = 1;
    if let Some(version) = args.get(1) {
        let ok = std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v == 2 || v == 3);
        if !ok {
            return;
        }
        j = 2;
    }
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j).copied().unwrap_or_default();
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            for k in [j + 1, j + 2] {
                if let Some(a) = args.get_mut(k) {
                    *a = REDACTED;
                }
            }
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            j += 2;
        } else {
            return;
        }
    }
}

/// One monitor line: `+<secs>.<micros> [<db> <origin>] "arg" ...\r\n`.
pub fn format_line(now: SystemTime, origin: Origin<'_>, db: usize, args: &[&[u8]]) -> Vec<u8> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut line = format!("+{}.{:06} [{db} ", since.as_secs(), since.subsec_micros()).into_bytes();
    match origin {
        Origin::Client(c) => line.extend_from_slice(c.addr.to_string().as_bytes()),
        Origin::Script => line.extend_from_slice(b"lua"),
    }
    line.push(b']');
    for a in args {
        line.push(b' ');
        quote_into(&mut line, a);
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes, `\xHH`
/// (lowercase) for other non-printable bytes.
pub fn quote_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &[u8]) -> String {
        let mut v = Vec::new();
        quote_into(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn quotes_as_sdscatrepr() {
        assert_eq!(quoted(b"a b"), r#""a b""#);
        assert_eq!(
            quoted(b"x\"y\\z\n\r\t\x07\x08\x01\xff"),
            r#""x\"y\\z\n\r\t\a\b\x01\xff""#
        );
    }

    #[test]
    fn line_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_000_042);
        let line = format_line(t, Origin::Script, 3, &[b"set", b"k"]);
        assert_eq!(line, b"+1700000000.000042 [3 lua] \"set\" \"k\"\r\n");
    }

    #[test]
    fn redacts_auth_and_hello() {
        assert_eq!(redacted(&[b"AUTH", b"pw"]), vec![&b"AUTH"[..], REDACTED]);
        assert_eq!(
            redacted(&[b"auth", b"u", b"pw"]),
            vec![&b"auth"[..], REDACTED, REDACTED]
        );
        // A syntax error comes before redaction in Redis.
        assert_eq!(redacted(&[b"auth", b"a", b"b", b"c"])[1], b"a");
        let hello = redacted(&[b"hello", b"3", b"setname", b"n", b"auth", b"u", b"p"]);
        assert_eq!(
            hello,
            vec![
                &b"hello"[..],
                b"3",
                b"setname",
                b"n",
                b"auth",
                REDACTED,
                REDACTED
            ]
        );
        let bad = redacted(&[b"hello", b"4", b"auth", b"u", b"p"]);
        assert_eq!(bad[3], b"u");
    }
}
