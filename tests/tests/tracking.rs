//! Client-side caching (`CLIENT TRACKING`) against the real binary,
//! compared byte for byte with a real `redis-server` (client ids
//! normalised): RESP3 pushes in default mode, RESP2 through `REDIRECT` to a
//! `__redis__:invalidate` subscriber, BCAST with prefixes, OPTIN/OPTOUT
//! with `CLIENT CACHING`, NOLOOP, flushes, expiry, transactions and
//! scripts, a redirect target going away, and the tracking fields of
//! `CLIENT INFO` and `INFO`. Error replies are in
//! `tests/conformance/client.redis`.

use std::time::Duration;

use amber_tests::differential_by;
use amber_tests::reply::show;
use amber_tests::RespClient;

fn connect(port: u16) -> RespClient {
    let c = RespClient::connect(port).expect("connect");
    c.set_timeout(Duration::from_secs(3));
    c
}

/// A client switched to RESP3 (the `HELLO` reply, which names the server,
/// is not compared).
fn resp3(port: u16) -> RespClient {
    let mut c = connect(port);
    c.cmd_str("HELLO 3");
    c
}

fn id_of(c: &mut RespClient) -> u64 {
    let r = c.cmd_str("CLIENT ID");
    String::from_utf8_lossy(&r)
        .trim_start_matches(':')
        .trim()
        .parse()
        .expect("an id")
}

/// `reply` shown with the client ids of `ids` replaced by their names.
fn norm(reply: &[u8], ids: &[(u64, &str)]) -> String {
    let mut s = show(reply);
    for (id, name) in ids {
        s = s
            .replace(&format!(":{id}\\r\\n"), &format!(":<{name}>\\r\\n"))
            .replace(&format!("redir={id} "), &format!("redir=<{name}> "));
    }
    s
}

/// The `flags=` and `redir=` fields of a `CLIENT INFO` reply.
fn tracking_fields(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply)
        .split_whitespace()
        .filter(|f| f.starts_with("flags=") || f.starts_with("redir="))
        .map(|f| format!("{f} "))
        .collect()
}

/// The `tracking_*` lines of `INFO`.
fn info_tracking(c: &mut RespClient) -> String {
    let r = c.cmd_str("INFO everything");
    String::from_utf8_lossy(&r)
        .split("\r\n")
        .filter(|l| l.starts_with("tracking_"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Sends one command and reads `n` replies (a reply and the pushes after it).
fn cmd_n(c: &mut RespClient, line: &str, n: usize) -> Vec<String> {
    let args: Vec<&str> = line.split(' ').collect();
    c.send(&args).expect("send");
    (0..n)
        .map(|_| show(&c.read_reply().expect("a reply")))
        .collect()
}

fn next(c: &mut RespClient) -> String {
    show(&c.read_reply().expect("a message"))
}

#[test]
fn resp3_default_mode_invalidates_once_and_forgets() {
    differential_by("resp3 default", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on")),
            show(&a.cmd_str("CLIENT TRACKINGINFO")),
            show(&a.cmd_str("CLIENT GETREDIR")),
            tracking_fields(&a.cmd_str("CLIENT INFO")),
            info_tracking(&mut b),
            show(&a.cmd_str("GET k")),
            info_tracking(&mut b),
            show(&b.cmd_str("SET k 1")),
        ];
        out.push(next(&mut a));
        // Forgotten after one invalidation: a second write sends nothing.
        out.push(show(&b.cmd_str("SET k 2")));
        out.push(show(&a.cmd_str("PING")));
        out.push(info_tracking(&mut b));
        // The client's own write: its reply, then the invalidation.
        out.push(show(&a.cmd_str("GET k")));
        out.extend(cmd_n(&mut a, "SET k 3", 2));
        // Several keys read at once, several writes at once.
        out.push(show(&a.cmd_str("MGET k j")));
        out.push(show(&a.cmd_str("STRLEN s")));
        out.push(show(&b.cmd_str("MSET k 1 j 2 s 3")));
        out.extend((0..3).map(|_| next(&mut a)));
        // Deleting, renaming, expiring: all are modifications.
        out.push(show(&a.cmd_str("MGET k j")));
        out.push(show(&b.cmd_str("DEL k")));
        out.push(next(&mut a));
        out.push(show(&b.cmd_str("RENAME j j2")));
        out.push(next(&mut a));
        // A write that changes nothing is no modification.
        out.push(show(&a.cmd_str("SISMEMBER set m")));
        out.push(show(&b.cmd_str("SADD set m")));
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("SISMEMBER set m")));
        out.push(show(&b.cmd_str("SADD set m")));
        out.push(show(&a.cmd_str("PING")));
        // Off: nothing more, and the reads are no longer remembered.
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&a.cmd_str("CLIENT TRACKING off")));
        out.push(show(&b.cmd_str("SET k 4")));
        out.push(show(&a.cmd_str("PING")));
        out.push(show(&a.cmd_str("CLIENT TRACKINGINFO")));
        out.push(show(&a.cmd_str("CLIENT GETREDIR")));
        out.push(tracking_fields(&a.cmd_str("CLIENT INFO")));
        out.push(info_tracking(&mut b));
        out
    });
}

#[test]
fn resp2_redirect_to_an_invalidate_subscriber() {
    differential_by("resp2 redirect", &[], |p| {
        let (mut a, mut b, mut r) = (connect(p), connect(p), connect(p));
        let rid = id_of(&mut r);
        let ids = [(rid, "r")];
        let mut out = vec![show(&r.cmd_str("SUBSCRIBE __redis__:invalidate"))];
        let on = format!("CLIENT TRACKING on redirect {rid}");
        out.push(show(&a.cmd_str(&on)));
        out.push(norm(&a.cmd_str("CLIENT TRACKINGINFO"), &ids));
        out.push(norm(&a.cmd_str("CLIENT GETREDIR"), &ids));
        out.push(norm(
            tracking_fields(&a.cmd_str("CLIENT INFO")).as_bytes(),
            &ids,
        ));
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&b.cmd_str("SET k 1")));
        out.push(next(&mut r));
        // Its own write goes to the redirect target too.
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&a.cmd_str("SET k 2")));
        out.push(next(&mut r));
        // A flush: a null on the channel.
        out.push(show(&b.cmd_str("FLUSHALL")));
        out.push(next(&mut r));
        // Without a redirect a RESP2 client gets nothing.
        out.push(show(&a.cmd_str("CLIENT TRACKING on")));
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&b.cmd_str("SET k 3")));
        out.push(show(&a.cmd_str("PING")));
        out.push(show(&r.cmd_str("PING")));
        out
    });
}

#[test]
fn bcast_with_prefixes() {
    differential_by("bcast", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on bcast prefix p: prefix q:")),
            show(&a.cmd_str("CLIENT TRACKINGINFO")),
            tracking_fields(&a.cmd_str("CLIENT INFO")),
            info_tracking(&mut b),
            show(&b.cmd_str("SET p:1 1")),
        ];
        out.push(next(&mut a));
        out.push(show(&b.cmd_str("SET x 1")));
        out.push(show(&b.cmd_str("SET q:1 1")));
        out.push(next(&mut a));
        // Reads are not remembered in BCAST mode; the prefix is enough.
        out.push(show(&a.cmd_str("GET x")));
        out.push(show(&b.cmd_str("SET x 2")));
        out.push(show(&a.cmd_str("PING")));
        // Several keys of one batch in one message, in key order.
        out.push(show(&b.cmd_str("MSET p:b 1 p:a 1 x 3")));
        out.push(next(&mut a));
        out.extend(cmd_n(&mut a, "SET p:3 1", 2));
        // More prefixes on the way; an overlapping one is refused.
        out.push(show(&a.cmd_str("CLIENT TRACKING on bcast prefix r:")));
        out.push(show(&a.cmd_str("CLIENT TRACKING on bcast prefix p:x")));
        out.push(show(&a.cmd_str("CLIENT TRACKINGINFO")));
        out.push(show(&a.cmd_str("CLIENT TRACKING on")));
        out.push(info_tracking(&mut b));
        out.push(show(&a.cmd_str("CLIENT TRACKING off")));
        out.push(info_tracking(&mut b));
        // No prefix: every key. Redis 7.0.15 answers an overlap among
        // later new prefixes with the error and then OK.
        let mut c = resp3(p);
        out.extend(cmd_n(
            &mut c,
            "CLIENT TRACKING on bcast prefix x prefix ab prefix a",
            2,
        ));
        out.push(show(&c.cmd_str("CLIENT TRACKINGINFO")));
        out.push(show(&c.cmd_str("CLIENT TRACKING off")));
        out.push(show(&c.cmd_str("CLIENT TRACKING on bcast")));
        out.push(show(&b.cmd_str("SET anything 1")));
        out.push(next(&mut c));
        out
    });
}

#[test]
fn optin_optout_and_caching() {
    differential_by("optin/optout", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on optin")),
            show(&a.cmd_str("GET k1")),
            show(&a.cmd_str("CLIENT CACHING yes")),
            show(&a.cmd_str("CLIENT TRACKINGINFO")),
            show(&a.cmd_str("GET k2")),
            show(&a.cmd_str("GET k3")),
            show(&b.cmd_str("MSET k1 1 k2 1 k3 1")),
        ];
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        // In a transaction CACHING lasts until EXEC.
        out.push(show(&a.cmd_str("MULTI")));
        out.push(show(&a.cmd_str("CLIENT CACHING yes")));
        out.push(show(&a.cmd_str("GET k1")));
        out.push(show(&a.cmd_str("EXEC")));
        out.push(show(&a.cmd_str("GET k2")));
        out.push(show(&b.cmd_str("MSET k1 2 k2 2 k3 2")));
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        out.push(show(&a.cmd_str("CLIENT TRACKING off")));
        out.push(show(&a.cmd_str("CLIENT TRACKING on optout")));
        out.push(show(&a.cmd_str("GET k1")));
        out.push(show(&a.cmd_str("CLIENT CACHING no")));
        out.push(show(&a.cmd_str("CLIENT TRACKINGINFO")));
        out.push(show(&a.cmd_str("GET k2")));
        out.push(show(&a.cmd_str("GET k3")));
        out.push(show(&b.cmd_str("MSET k1 3 k2 3 k3 3")));
        out.push(next(&mut a));
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        out
    });
}

#[test]
fn noloop_skips_own_writes() {
    differential_by("noloop", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on noloop")),
            show(&a.cmd_str("GET k")),
            show(&a.cmd_str("SET k 1")),
            // The own write dropped the key: another client's write is silent.
            show(&b.cmd_str("SET k 2")),
            show(&a.cmd_str("PING")),
            show(&a.cmd_str("GET k")),
            show(&b.cmd_str("SET k 3")),
        ];
        out.push(next(&mut a));
        // Flushes are sent even to NOLOOP clients.
        out.extend(cmd_n(&mut a, "FLUSHDB", 2));
        out.push(show(&a.cmd_str("CLIENT TRACKING off")));
        out.push(show(&a.cmd_str("CLIENT TRACKING on bcast noloop")));
        out.push(show(&a.cmd_str("SET p 1")));
        out.push(show(&b.cmd_str("SET z 1")));
        out.push(next(&mut a));
        out
    });
}

#[test]
fn flushes_send_a_null_invalidation() {
    differential_by("flush", &[], |p| {
        let (mut a, mut b, mut c) = (resp3(p), connect(p), resp3(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on")),
            show(&c.cmd_str("CLIENT TRACKING on bcast")),
            show(&a.cmd_str("GET k")),
            info_tracking(&mut b),
        ];
        // Own flush: the reply, then the null.
        out.extend(cmd_n(&mut a, "FLUSHALL", 2));
        out.push(next(&mut c));
        out.push(info_tracking(&mut b));
        out.push(show(&b.cmd_str("FLUSHDB")));
        out.push(next(&mut a));
        out.push(next(&mut c));
        // The table was emptied: nothing for k.
        out.push(show(&b.cmd_str("SET k 1")));
        out.push(next(&mut c));
        out.push(show(&a.cmd_str("PING")));
        out
    });
}

#[test]
fn expiry_invalidates() {
    differential_by("expiry", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on")),
            show(&b.cmd_str("SET e 1 PX 500")),
            show(&a.cmd_str("GET e")),
        ];
        // The active expiry cycle removes it and sends the invalidation.
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        out
    });
}

#[test]
fn transactions_and_scripts_send_after_the_reply() {
    differential_by("multi and scripts", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on")),
            show(&a.cmd_str("GET k")),
            show(&a.cmd_str("MULTI")),
            show(&a.cmd_str("SET k 4")),
            show(&a.cmd_str("GET k")),
            show(&a.cmd_str("SET k 5")),
        ];
        // EXEC's reply, then one invalidation per modification of a
        // remembered key.
        out.extend(cmd_n(&mut a, "EXEC", 3));
        // Another client's transaction.
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&b.cmd_str("MULTI")));
        out.push(show(&b.cmd_str("SET k 6")));
        out.push(show(&b.cmd_str("SET k 7")));
        out.push(show(&b.cmd_str("EXEC")));
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        // A script's reads are remembered for its caller.
        out.push(show(&a.cmd_str("GET k")));
        out.extend(cmd_n(
            &mut a,
            "EVAL redis.call('set',KEYS[1],'x')return(redis.call('get',KEYS[1])) 1 k",
            2,
        ));
        out.extend(cmd_n(&mut a, "SET k y", 2));
        out
    });
}

#[test]
fn redirect_target_going_away() {
    differential_by("broken redirect", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut x = connect(p);
        let xid = id_of(&mut x);
        let ids = [(xid, "x")];
        let mut out = vec![
            show(&a.cmd_str(&format!("CLIENT TRACKING on redirect {xid}"))),
            show(&a.cmd_str("GET k")),
        ];
        drop(x);
        // Wait until the server has forgotten the client.
        for _ in 0..100 {
            let list = b.cmd_str("CLIENT LIST");
            if !String::from_utf8_lossy(&list).contains(&format!("id={xid} ")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out.push(show(&b.cmd_str("SET k 1")));
        out.push(norm(&a.read_reply().expect("a push"), &ids));
        out.push(show(&a.cmd_str("GET k")));
        out.push(show(&b.cmd_str("SET k 2")));
        out.push(norm(&a.read_reply().expect("a push"), &ids));
        out.push(norm(&a.cmd_str("CLIENT TRACKINGINFO"), &ids));
        out.push(norm(
            tracking_fields(&a.cmd_str("CLIENT INFO")).as_bytes(),
            &ids,
        ));
        out.push(show(&b.cmd_str("FLUSHALL")));
        out.push(norm(&a.read_reply().expect("a push"), &ids));
        // Re-enabling clears the broken flag.
        out.push(show(&a.cmd_str("CLIENT TRACKING on")));
        out.push(show(&a.cmd_str("CLIENT TRACKINGINFO")));
        out
    });
}

#[test]
fn tracking_table_max_keys_evicts_with_invalidations() {
    // Which key goes is random in both servers: compare the count.
    differential_by("max keys", &["--tracking-table-max-keys", "2"], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![
            show(&a.cmd_str("CLIENT TRACKING on")),
            show(&a.cmd_str("MGET k1 k2 k3 k4")),
        ];
        // The next command trims the table to two keys, invalidating two.
        out.push(show(&b.cmd_str("PING")));
        for _ in 0..2 {
            let push = show(&a.read_reply().expect("a push"));
            out.push(push.contains("invalidate").to_string());
        }
        out.push(info_tracking(&mut b));
        out.push(show(&a.cmd_str("PING")));
        out
    });
}

/// A script's read command makes tracking remember the script's declared
/// keys (Redis's `trackingRememberKeys` of the script's caller), not the
/// keys the command read; a script without a read remembers nothing.
#[test]
fn scripts_remember_their_declared_keys_on_a_read() {
    differential_by("script keys", &[], |p| {
        let (mut a, mut b) = (resp3(p), connect(p));
        let mut out = vec![show(&a.cmd_str("CLIENT TRACKING on"))];
        // No read: nothing remembered, the writes below are silent.
        out.push(show(&a.cmd(&[
            "EVAL",
            "redis.call('set', 'k3', 'bar')",
            "2",
            "k1",
            "k2",
        ])));
        out.push(show(&b.cmd_str("MSET k2 1 k1 1 k3 1")));
        // A read of k3: k1 and k2 are remembered, k3 is not.
        out.push(show(&a.cmd(&[
            "EVAL",
            "return redis.call('get', 'k3')",
            "2",
            "k1",
            "k2",
        ])));
        out.push(show(&b.cmd_str("SET k3 2")));
        out.push(show(&b.cmd_str("MSET k2 2 k1 2")));
        out.push(next(&mut a));
        out.push(next(&mut a));
        // EVAL_RO likewise.
        out.push(show(&a.cmd(&[
            "EVAL_RO",
            "return redis.call('get', 'k3')",
            "1",
            "k1",
        ])));
        out.push(show(&b.cmd_str("SET k1 3")));
        out.push(next(&mut a));
        out.push(show(&a.cmd_str("PING")));
        out
    });
}

/// Lowering `tracking-table-max-keys` evicts tracked keys right away, with
/// no further command (Redis's `serverCron`): the clients tracking an
/// evicted key get its invalidation. Which key goes is Redis's random
/// walk, so the key is not compared.
#[test]
fn a_lowered_table_limit_evicts_without_a_command() {
    differential_by("table limit", &[], |p| {
        let (mut a, mut b, mut r) = (connect(p), connect(p), connect(p));
        let rid = id_of(&mut r);
        let mut out = vec![show(&r.cmd_str("SUBSCRIBE __redis__:invalidate"))];
        out.push(show(
            &a.cmd_str(&format!("CLIENT TRACKING on REDIRECT {rid}")),
        ));
        out.push(show(&a.cmd_str("MSET k1 1 k2 2")));
        out.push(show(&a.cmd_str("MGET k1 k2")));
        out.push(show(&b.cmd_str("CONFIG SET tracking-table-max-keys 1")));
        let evicted = next(&mut r).replace("k1", "k?").replace("k2", "k?");
        out.push(evicted);
        out.push(info_tracking(&mut b));
        out.push(show(&b.cmd_str("CONFIG SET tracking-table-max-keys 0")));
        out
    });
}

/// A command that finds memory full evicts first, and the invalidation of
/// an evicted key it tracks reaches the client before that command's
/// reply (Redis's "Tracking invalidation message of eviction keys should
/// be before response"). Another client lowers `maxmemory`: Redis evicts
/// then and there, Amber at the next command or background pass; either
/// way the invalidation comes before `GETBIT`'s reply.
#[test]
fn eviction_invalidations_come_before_the_reply() {
    differential_by("eviction order", &[], |p| {
        let (mut c, mut admin) = (resp3(p), connect(p));
        let mut out = vec![show(&c.cmd_str("CLIENT TRACKING on"))];
        out.push(show(&c.cmd_str("SETEX volatile-key 10000 x")));
        out.push(show(&c.cmd_str("SET big-key y")));
        out.push(show(&c.cmd_str("GET volatile-key")));
        out.push(show(
            &admin.cmd_str("CONFIG SET maxmemory-policy volatile-random"),
        ));
        out.push(show(&admin.cmd_str("CONFIG SET maxmemory 1")));
        out.extend(cmd_n(&mut c, "GETBIT big-key 0", 2));
        out.push(show(&c.cmd_str("EXISTS volatile-key big-key")));
        out.push(show(&admin.cmd_str("CONFIG SET maxmemory 0")));
        out.push(show(
            &admin.cmd_str("CONFIG SET maxmemory-policy noeviction"),
        ));
        out
    });
}
