//! Unit-test helpers: a DRAM-only server without sockets, a client of it,
//! and a way to run one command line through the real dispatcher.

use crate::client::Client;
use crate::cmd::Ctx;
use crate::resp::ReplyWriter;
use crate::state::ServerState;

/// A server with the default configuration and a DRAM-only keyspace.
pub fn server() -> ServerState {
    ServerState::with_keyspace(
        crate::config::Config::default(),
        amber_storage::Keyspace::new(amber_storage::KeyspaceConfig::default()),
    )
}

/// A logged-in client of `srv`, as if connected from 127.0.0.1.
pub fn client(srv: &ServerState) -> Client {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
    Client::new(srv.clients.register(addr, addr, -1), true)
}

/// Runs one command line (arguments split on spaces) as `client` through
/// the dispatcher and returns its reply bytes as text.
pub fn run(srv: &ServerState, client: &mut Client, line: &str) -> String {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    let mut out = ReplyWriter::default();
    crate::cmd::execute(
        &mut Ctx {
            srv,
            client,
            out: &mut out,
        },
        &args,
    );
    String::from_utf8_lossy(out.as_bytes()).into_owned()
}

/// Attaches a replica to `srv`'s stream (no connection: its mailbox
/// collects what it would be sent; read it with [`stream`]).
pub fn attach_replica(srv: &ServerState) -> std::sync::Arc<crate::pubsub::Mailbox> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 2));
    let handle = srv.clients.register(addr, addr, -1);
    let mailbox = std::sync::Arc::new(crate::pubsub::Mailbox::new(handle));
    srv.master
        .attach(std::sync::Arc::new(crate::replication::Replica::new(
            99,
            mailbox.clone(),
            "127.0.0.1".into(),
            1,
        )));
    mailbox
}

/// The commands a replica's mailbox received since the last call, as
/// arrays of words.
pub fn stream(mailbox: &crate::pubsub::Mailbox) -> Vec<Vec<String>> {
    let mut out = ReplyWriter::default();
    mailbox.drain_into(&mut out);
    let mut cmds = Vec::new();
    let mut parser = crate::resp::RequestParser::default();
    let mut rest = out.as_bytes();
    while let Ok(Some(frame)) = parser.parse(rest, true) {
        let (args, len) = parser.frame_args(rest, &frame);
        cmds.push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        );
        rest = rest.get(len..).unwrap_or_default();
    }
    cmds
}
