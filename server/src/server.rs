//! The accept loop: bounded connections, back-off on accept errors, shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::connection;
use crate::state::ServerState;

/// Accepts connections on `listeners` until shutdown is requested.
pub async fn run(srv: Arc<ServerState>, listeners: Vec<TcpListener>) {
    crate::observer::ServerObserver::install(&srv);
    // Before the first connection: `REPLICAOF` spawns its link task on
    // this runtime.
    crate::replica::Replication::start(&srv);
    let threads = match srv.config.get_i64("threads") {
        n if n > 0 => n as usize,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    match crate::cores::Cores::start(&srv, threads) {
        Ok(cores) => {
            let _ = srv.cores.set(cores);
        }
        // The accept loops then serve connections on this runtime, as
        // before there were connection threads, rather than not at all.
        Err(e) => tracing::error!(
            error = %e,
            "cannot start the connection threads; serving connections on the main runtime"
        ),
    }
    let mut tasks = Vec::new();
    for listener in listeners {
        tasks.push(tokio::spawn(accept_loop(srv.clone(), listener)));
    }
    let background = tokio::spawn(crate::background::run(srv.clone()));
    let mut shutdown = srv.shutdown_signal();
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    for t in tasks {
        t.abort();
    }
    background.abort();
}

async fn accept_loop(srv: Arc<ServerState>, listener: TcpListener) {
    let mut backoff = Duration::from_millis(1);
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(pair) => {
                backoff = Duration::from_millis(1);
                pair
            }
            Err(e) => {
                // Usually EMFILE: wait and retry rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        srv.stats.connections.fetch_add(1, Ordering::Relaxed);
        let max = srv.config.hot.maxclients.load(Ordering::Relaxed) as usize;
        if srv.clients.len() >= max {
            srv.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        let stream = match srv.cores.get() {
            Some(cores) => cores.admit(stream),
            None => Some(stream),
        };
        if let Some(stream) = stream {
            tokio::spawn(connection::serve(srv.clone(), stream));
        }
    }
}
