//! `DEBUG PROTOCOL <type>` side by side with `redis-server`: every type's
//! sample reply in RESP2 and RESP3, byte for byte, the errors (unknown type
//! name, `push` in RESP2, wrong argument count), and a push that
//! `CLIENT REPLY OFF` does not silence.

use amber_tests::{connect, differential};

/// Every type name Redis 7.0's `DEBUG PROTOCOL` knows, plus a case variant
/// and an unknown one.
const TYPES: [&str; 15] = [
    "string",
    "integer",
    "double",
    "bignum",
    "null",
    "array",
    "set",
    "map",
    "attrib",
    "push",
    "verbatim",
    "true",
    "false",
    "MAP",
    "nosuchtype",
];

#[test]
fn debug_protocol_replies_match_redis() {
    differential("debug protocol", &["--enable-debug-command", "yes"], |p| {
        let mut out = vec![];
        for proto in ["2", "3"] {
            let mut c = connect(p);
            let hello = c.cmd_str(&format!("HELLO {proto}"));
            out.push(vec![hello.first().copied().unwrap_or(0)]);
            for t in TYPES {
                out.push(c.cmd(&["DEBUG", "PROTOCOL", t]));
                // `push` in RESP3: the push, then the real reply.
                if proto == "3" && t == "push" {
                    out.push(c.read_reply().expect("the reply after the push"));
                }
            }
            out.push(c.cmd_str("DEBUG PROTOCOL"));
            out.push(c.cmd_str("DEBUG PROTOCOL string extra"));
        }
        // The push is kept under CLIENT REPLY OFF, its reply is not; the
        // PING after CLIENT REPLY ON shows nothing else came.
        let mut c = connect(p);
        c.cmd_str("HELLO 3");
        c.send(&["CLIENT", "REPLY", "OFF"]).expect("send");
        c.send(&["DEBUG", "PROTOCOL", "push"]).expect("send");
        out.push(c.read_reply().expect("the push"));
        out.push(c.cmd_str("CLIENT REPLY ON"));
        out.push(c.cmd_str("PING"));
        out
    });
}
