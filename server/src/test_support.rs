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
