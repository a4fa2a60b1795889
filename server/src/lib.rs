//! `amber-server`: a Redis-compatible server whose keyspace can outgrow DRAM.
//!
//! Layout, after mini-redis: [`connection`] (bytes in and out), [`resp`]
//! (our request parser and reply writer), [`cmd`] (one module per command
//! family), [`state`] (what connections share), [`server`] (accept loop),
//! [`config`] (directives), [`client`] (per-connection state).
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod acl;
pub mod background;
pub mod blocking;
pub mod client;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod cores;
pub mod latency;
pub mod lazyfree;
pub mod lease;
pub mod maxmemory;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod observer;
pub mod pause;
pub mod pubsub;
pub mod rdb;
pub mod replica;
pub mod replica_expires;
pub mod replication;
pub mod resp;
pub mod round;
pub mod server;
pub mod slowlog;
pub mod snapshot;
pub mod state;
#[cfg(test)]
pub(crate) mod test_support;
pub mod tracking;
pub mod watch;

use std::sync::Arc;

use tokio::net::TcpListener;

pub use state::ServerState;

/// Binds every address of `bind` on `port` (0 picks a free port) and returns
/// the listeners.
pub async fn bind(bind: &str, port: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in bind.split_whitespace() {
        // Redis accepts "-::1" (optional address); treat the dash as optional.
        let (optional, addr) = match addr.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, addr),
        };
        let host = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        match TcpListener::bind(&host).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional => {
                tracing::warn!(address = %host, error = %e, "skipping optional bind address")
            }
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

/// Serves on `listeners` until shutdown is requested.
pub async fn run(srv: Arc<ServerState>, listeners: Vec<TcpListener>) {
    srv.set_shared();
    server::run(srv, listeners).await
}
