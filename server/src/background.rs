//! Periodic background work: active expiry (Redis's `serverCron`, `hz` times a second).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;

/// Keys removed per active-expiry pass at most, so one pass stays short.
const EXPIRE_BUDGET: usize = 2000;

/// Runs until the task is aborted at shutdown.
pub async fn run(srv: Arc<ServerState>) {
    loop {
        let hz = srv.config.get_i64("hz").clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        if srv.active_expire.load(Ordering::Relaxed) {
            let srv = srv.clone();
            // Shard locks are sync; keep them off the async workers' hot loop.
            let _ = tokio::task::spawn_blocking(move || {
                while srv.keyspace.expire_cycle(EXPIRE_BUDGET) == EXPIRE_BUDGET {}
            })
            .await;
        }
    }
}
