//! The caller's own `qbuf` in `CLIENT LIST` / `CLIENT INFO`, side by side
//! with `redis-server`: while a command runs its query buffer still holds
//! it (26 bytes for `CLIENT LIST` itself), and a pipelined batch's earlier
//! requests too (Redis trims the buffer after the batch).

use amber_tests::{connect, differential, reply, RespClient};

/// The `name=value` field of a `CLIENT LIST`/`CLIENT INFO` reply.
fn field(reply: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    let value = text
        .split([' ', '\n', '\r'])
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or("(missing)");
    value.as_bytes().to_vec()
}

/// The caller's own line of `CLIENT LIST ID <own id>`.
fn own_list_line(c: &mut RespClient) -> Vec<u8> {
    let id = c.cmd_str("CLIENT ID");
    let id = String::from_utf8_lossy(&id)
        .trim()
        .trim_start_matches(':')
        .to_string();
    c.cmd(&["CLIENT", "LIST", "ID", &id])
}

#[test]
fn own_qbuf_includes_the_running_command() {
    differential("own qbuf", &[], |p| {
        let mut c = connect(p);
        let mut out = vec![
            field(&c.cmd_str("CLIENT LIST"), "qbuf"),
            field(&c.cmd_str("CLIENT INFO"), "qbuf"),
            field(&c.cmd_str("client info"), "qbuf"),
            field(&own_list_line(&mut c), "qbuf"),
        ];
        // A batch of two requests in one write: the second sees both.
        let mut batch = reply::encode(&["PING"]);
        batch.extend_from_slice(&reply::encode(&["CLIENT", "INFO"]));
        c.send_raw(&batch).expect("send");
        out.push(c.read_reply().expect("PONG"));
        out.push(field(&c.read_reply().expect("CLIENT INFO"), "qbuf"));
        out
    });
}
