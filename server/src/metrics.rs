//! Prometheus metrics: `GET /metrics` on the `metrics-port` directive (0, the
//! default, turns the endpoint off).
//!
//! Two kinds of series, both in Prometheus's text format and base units:
//!
//! - **Per-command** series are recorded on the hot path through
//!   `metrics-exporter-prometheus`: `amber_commands_total{cmd}`,
//!   `amber_command_failures_total{cmd}` and the latency histogram
//!   `amber_command_duration_seconds{cmd}`. Their handles are created once per
//!   command name (on its first call) and then found with one hash lookup, so
//!   a call costs a lookup, two atomic adds and a histogram push. When the
//!   endpoint is off, [`record_command`] returns after one atomic load.
//! - **State** series (connections, keyspace size, errors by code, tiering)
//!   are read from [`ServerState`] at scrape time and written by this module,
//!   so they are exactly what `INFO` shows at that moment, and cost nothing
//!   between scrapes. The tiering figures come from [`tiering_snapshot`].
//!
//! The endpoint listens on the addresses of `bind` (so the same address
//! families: `127.0.0.1` stays loopback, `0.0.0.0` in a container is
//! reachable), answers `GET /metrics` (and `GET /`), and closes each
//! connection after one response. It is deliberately tiny: Prometheus scrapes
//! every few seconds; there is nothing to keep alive.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hashbrown::HashMap;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::state::ServerState;

/// Command latency buckets, seconds: 1 µs to 1 s (an in-memory command takes
/// microseconds; an arena read on cold storage tens of them).
const DURATION_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (bounds the memory samples take between scrapes).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Longest request head we read before answering.
const MAX_REQUEST: usize = 8 * 1024;

/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Tiering figures at one instant, for the metrics endpoint (and `INFO`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TieringSnapshot {
    /// Keys whose value is in DRAM.
    pub hot_keys: u64,
    /// Keys whose value is in the arena only.
    pub cold_keys: u64,
    /// DRAM used by the hot tier, bytes.
    pub dram_used_bytes: u64,
    /// Arena bytes in use (live records).
    pub arena_used_bytes: u64,
    /// Values moved from DRAM to the arena since start.
    pub demotions: u64,
    /// Values moved from the arena to DRAM since start.
    pub promotions: u64,
    /// Persist calls (cache-line flushes + fences, or msync) since start.
    pub persist_calls: u64,
}

/// The tiering engine's figures.
///
/// The same figures `INFO tiering` shows.
pub fn tiering_snapshot(srv: &ServerState) -> TieringSnapshot {
    let t = crate::cmd::info::tiering_stats(srv);
    TieringSnapshot {
        hot_keys: t.hot_keys,
        cold_keys: t.cold_keys,
        dram_used_bytes: t.dram_bytes,
        arena_used_bytes: t.arena_bytes_used,
        demotions: t.demotions,
        promotions: t.promotions,
        persist_calls: t.persist_calls,
    }
}

/// The handles of one command's series.
struct CommandMetrics {
    calls: Counter,
    failures: Counter,
    duration: Histogram,
}

/// The running exporter.
struct Exporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Every command and subcommand name (`get`, `config|get`), with its
    /// handles once it has been called.
    commands: HashMap<String, OnceLock<CommandMetrics>>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

impl Exporter {
    fn new(srv: &ServerState) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("amber_command_duration_seconds".into()),
                DURATION_BUCKETS,
            )
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let describe = |name: &'static str, help: &'static str, hist: bool| {
            if hist {
                recorder.describe_histogram(name.into(), Some(metrics::Unit::Seconds), help.into())
            } else {
                recorder.describe_counter(name.into(), None, help.into())
            }
        };
        describe(
            "amber_commands_total",
            "Commands that ran, by command.",
            false,
        );
        describe(
            "amber_command_failures_total",
            "Commands that ran and answered an error, by command.",
            false,
        );
        describe(
            "amber_command_duration_seconds",
            "Time spent executing a command, by command.",
            true,
        );
        let mut commands = HashMap::new();
        for def in srv.commands.iter() {
            commands.insert(def.name.clone(), OnceLock::new());
            for sub in def.subcommands.values() {
                commands.insert(sub.name.clone(), OnceLock::new());
            }
        }
        let handle = recorder.handle();
        Exporter {
            recorder,
            handle,
            commands,
        }
    }

    fn command(&self, name: &str) -> Option<&CommandMetrics> {
        let slot = self.commands.get(name)?;
        Some(slot.get_or_init(|| {
            let labels = vec![Label::new("cmd", name.to_owned())];
            let meta = Metadata::new(module_path!(), metrics::Level::INFO, None);
            let key = |n: &'static str| Key::from_parts(n, labels.clone());
            CommandMetrics {
                calls: self
                    .recorder
                    .register_counter(&key("amber_commands_total"), &meta),
                failures: self
                    .recorder
                    .register_counter(&key("amber_command_failures_total"), &meta),
                duration: self
                    .recorder
                    .register_histogram(&key("amber_command_duration_seconds"), &meta),
            }
        }))
    }
}

/// Records one executed command (called by `cmd::execute`). Free when the
/// endpoint is off.
#[inline]
pub fn record_command(name: &str, elapsed: Duration, failed: bool) {
    let Some(exporter) = EXPORTER.get() else {
        return;
    };
    if let Some(m) = exporter.command(name) {
        m.calls.increment(1);
        if failed {
            m.failures.increment(1);
        }
        m.duration.record(elapsed.as_secs_f64());
    }
}

/// Starts the endpoint on `port` at every address of `bind`. Returns the
/// bound addresses. Fails if the port cannot be bound; a second call in the
/// same process reuses the first call's recorder.
pub async fn start(
    srv: Arc<ServerState>,
    bind: &str,
    port: u16,
) -> std::io::Result<Vec<std::net::SocketAddr>> {
    let listeners = crate::bind(bind, port).await?;
    let exporter = EXPORTER.get_or_init(|| Exporter::new(&srv));
    let mut addrs = Vec::new();
    for listener in listeners {
        if let Ok(a) = listener.local_addr() {
            addrs.push(a);
        }
        tokio::spawn(accept_loop(srv.clone(), listener));
    }
    let handle = exporter.handle.clone();
    let mut shutdown = srv.shutdown_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => handle.run_upkeep(),
                _ = shutdown.changed() => return,
            }
        }
    });
    Ok(addrs)
}

async fn accept_loop(srv: Arc<ServerState>, listener: TcpListener) {
    let mut shutdown = srv.shutdown_signal();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve(srv.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Answers one HTTP/1.x request and closes the connection.
async fn serve(srv: Arc<ServerState>, mut stream: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    })
    .await;
    if head.is_err() {
        return;
    }
    let line = buf
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics" | b"/") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&srv),
        ),
        (b"GET" | b"HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != b"HEAD" {
        response.push_str(&body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The whole exposition: state series, then the per-command ones.
pub fn render(srv: &ServerState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    render_state(srv, &mut out);
    if let Some(e) = EXPORTER.get() {
        out.push_str(&e.handle.render());
    }
    out
}

/// One metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value (backslash, quote, newline).
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The series read from the server's state at scrape time.
fn render_state(srv: &ServerState, out: &mut String) {
    let st = &srv.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    family(
        out,
        "amber_build_info",
        "gauge",
        "Amber's version (value is always 1).",
    );
    let _ = writeln!(
        out,
        "amber_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    single(
        out,
        "amber_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        srv.started.elapsed().as_secs(),
    );
    single(
        out,
        "amber_connected_clients",
        "gauge",
        "Client connections open now.",
        srv.clients.len() as u64,
    );
    single(
        out,
        "amber_monitors",
        "gauge",
        "Clients in MONITOR mode now.",
        srv.monitors.len() as u64,
    );
    let m = srv.master.view();
    single(
        out,
        "amber_replicas_connected",
        "gauge",
        "Replicas following this server now.",
        m.replicas.len() as u64,
    );
    single(
        out,
        "amber_repl_offset_bytes",
        "gauge",
        "The replication stream's offset (master_repl_offset).",
        m.offset,
    );
    single(
        out,
        "amber_repl_output_bytes_total",
        "counter",
        "Bytes sent to replicas (payloads and stream, per replica).",
        load(&srv.master.output_bytes),
    );
    single(
        out,
        "amber_repl_full_syncs_total",
        "counter",
        "Full resynchronizations served to replicas.",
        load(&srv.master.sync_full),
    );
    single(
        out,
        "amber_repl_partial_syncs_total",
        "counter",
        "Partial resynchronizations (+CONTINUE) served to replicas.",
        load(&srv.master.sync_partial_ok),
    );
    single(
        out,
        "amber_connections_received_total",
        "counter",
        "Client connections accepted.",
        load(&st.connections),
    );
    single(
        out,
        "amber_rejected_connections_total",
        "counter",
        "Client connections refused (maxclients).",
        load(&st.rejected_connections),
    );
    single(
        out,
        "amber_connection_moves_total",
        "counter",
        "Connections moved to the thread that serves the shard they keep using.",
        load(&st.connection_moves),
    );
    single(
        out,
        "amber_commands_processed_total",
        "counter",
        "Requests processed, including rejected ones (unknown, wrong arity, NOAUTH).",
        st.commands.get(),
    );
    single(
        out,
        "amber_net_input_bytes_total",
        "counter",
        "Bytes read from clients.",
        st.net_input_bytes.get(),
    );
    single(
        out,
        "amber_net_output_bytes_total",
        "counter",
        "Bytes written to clients.",
        st.net_output_bytes.get(),
    );
    single(
        out,
        "amber_keyspace_hits_total",
        "counter",
        "Key lookups that found the key.",
        st.keyspace_hits.get(),
    );
    single(
        out,
        "amber_keyspace_misses_total",
        "counter",
        "Key lookups that found nothing.",
        st.keyspace_misses.get(),
    );
    single(
        out,
        "amber_expired_keys_total",
        "counter",
        "Keys removed because their TTL passed.",
        srv.keyspace.stats.expired_keys.load(Ordering::Relaxed),
    );

    family(
        out,
        "amber_errors_total",
        "counter",
        "Error replies sent, by error code (ERR, WRONGTYPE, ...).",
    );
    let mut codes: Vec<(String, u64)> = st
        .errors
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    codes.sort();
    for (code, n) in codes {
        let _ = writeln!(
            out,
            "amber_errors_total{{code=\"{}\"}} {n}",
            label_value(&code)
        );
    }

    let dbs = (srv.config.get_i64("databases").max(1) as usize).min(amber_storage::DB_COUNT);
    let infos: Vec<_> = (0..dbs).map(|db| srv.keyspace.db_info(db)).collect();
    family(out, "amber_keys", "gauge", "Keys per database.");
    for (db, info) in infos.iter().enumerate() {
        let _ = writeln!(out, "amber_keys{{db=\"{db}\"}} {}", info.keys);
    }
    family(
        out,
        "amber_expiring_keys",
        "gauge",
        "Keys with a TTL per database.",
    );
    for (db, info) in infos.iter().enumerate() {
        let _ = writeln!(out, "amber_expiring_keys{{db=\"{db}\"}} {}", info.expires);
    }

    let ks = &srv.keyspace.stats;
    single(
        out,
        "amber_compactions_total",
        "counter",
        "Arena segments freed by the compactor.",
        ks.compactions.load(Ordering::Relaxed),
    );
    single(
        out,
        "amber_recovered_keys",
        "gauge",
        "Keys start-up recovery found in the arena.",
        ks.recovered_keys.load(Ordering::Relaxed),
    );
    family(
        out,
        "amber_recovery_seconds",
        "gauge",
        "Time start-up recovery took.",
    );
    let _ = writeln!(
        out,
        "amber_recovery_seconds {}",
        ks.recovery_ms.load(Ordering::Relaxed) as f64 / 1000.0
    );

    let t = tiering_snapshot(srv);
    single(
        out,
        "amber_hot_keys",
        "gauge",
        "Keys whose value is in DRAM.",
        t.hot_keys,
    );
    single(
        out,
        "amber_cold_keys",
        "gauge",
        "Keys whose value is only in the arena.",
        t.cold_keys,
    );
    single(
        out,
        "amber_dram_used_bytes",
        "gauge",
        "DRAM used by the hot tier.",
        t.dram_used_bytes,
    );
    single(
        out,
        "amber_dram_budget_bytes",
        "gauge",
        "The dram-budget directive.",
        srv.config.get_i64("dram-budget").max(0) as u64,
    );
    single(
        out,
        "amber_arena_used_bytes",
        "gauge",
        "Arena bytes holding live records.",
        t.arena_used_bytes,
    );
    single(
        out,
        "amber_arena_size_bytes",
        "gauge",
        "The pmem-size directive (arena capacity).",
        srv.config.get_i64("pmem-size").max(0) as u64,
    );
    single(
        out,
        "amber_demotions_total",
        "counter",
        "Values moved from DRAM to the arena.",
        t.demotions,
    );
    single(
        out,
        "amber_promotions_total",
        "counter",
        "Values moved from the arena to DRAM.",
        t.promotions,
    );
    single(
        out,
        "amber_persist_calls_total",
        "counter",
        "Persist calls made to the arena (flush+fence or msync).",
        t.persist_calls,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn state_series_follow_the_naming_rules() {
        // A DRAM-only keyspace: no arena file for a unit test.
        let srv = ServerState::with_keyspace(
            crate::config::Config::default(),
            amber_storage::Keyspace::new(amber_storage::KeyspaceConfig::default()),
        );
        let mut out = String::new();
        render_state(&srv, &mut out);
        for line in out.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut w = line.split(' ').skip(2);
            let (name, kind) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            assert!(name.starts_with("amber_"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
        assert!(out.contains("amber_keys{db=\"15\"} 0"));
        assert!(out.contains("amber_dram_budget_bytes 1073741824"));
    }
}
