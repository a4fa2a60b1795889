//! The `amber-server` binary, used like `redis-server`:
//! `amber-server [CONFIG_FILE] [--directive value ...]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use amber_server::{config, ServerState};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn usage() -> &'static str {
    "Usage: amber-server [/path/to/amber.conf] [options]\n       \
     amber-server - (read config from stdin)\n       \
     amber-server -v or --version\n       \
     amber-server -h or --help\n\n\
     Examples:\n       \
     amber-server (run with the embedded defaults: arena in ./data)\n       \
     amber-server configs/amber.conf\n       \
     amber-server --port 7777 --dram-budget 256mb\n"
}

fn init_logging(loglevel: &str) {
    let level = match loglevel {
        "debug" => "debug",
        "verbose" => "info",
        "notice" => "info",
        "warning" => "warn",
        _ => "off",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v" | "--version") => {
            println!(
                "Amber server v={} (Redis 7.0 compatible)",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Some("-h" | "--help") => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let mut stdin_file = None;
    let file = match args.first() {
        Some(a) if a == "-" => {
            args.remove(0);
            let mut text = String::new();
            if std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).is_ok() {
                let path =
                    std::env::temp_dir().join(format!("amber-stdin-{}.conf", std::process::id()));
                if std::fs::write(&path, text).is_ok() {
                    stdin_file = Some(path);
                }
            }
            stdin_file.clone()
        }
        Some(a) if !a.starts_with("--") => Some(PathBuf::from(args.remove(0))),
        _ => None,
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match config::load(file.as_deref(), &env, &args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(p) = stdin_file {
        let _ = std::fs::remove_file(p);
    }
    init_logging(&config.get("loglevel").unwrap_or_default());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main(config))
}

async fn async_main(config: config::Config) -> ExitCode {
    let bind = config.get("bind").unwrap_or_default();
    let port = config.get_i64("port") as u16;
    let dir = config.get("dir").unwrap_or_default();
    if !dir.is_empty() {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::error!(dir = %dir, error = %e, "cannot create the data directory");
            return ExitCode::FAILURE;
        }
    }
    let listeners = match amber_server::bind(&bind, port).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(bind = %bind, port, error = %e, "could not create server TCP listening socket");
            return ExitCode::FAILURE;
        }
    };
    let srv = match ServerState::new(config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("Fatal error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Redis's `dump.rdb`, into an empty keyspace (`crate::snapshot`).
    if let Err(e) = amber_server::snapshot::load_at_startup(&srv) {
        tracing::error!(error = %e, "cannot load the RDB file");
        eprintln!("{e}");
        let _ = srv.keyspace.close();
        return ExitCode::FAILURE;
    }
    if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
        srv.port
            .store(addr.port(), std::sync::atomic::Ordering::Relaxed);
    }
    // Prometheus endpoint (metrics-port > 0), on the same addresses as `bind`.
    let metrics_port = srv.config.get_i64("metrics-port") as u16;
    if metrics_port > 0 {
        match amber_server::metrics::start(srv.clone(), &bind, metrics_port).await {
            Ok(addrs) => tracing::info!(?addrs, "metrics endpoint listening (GET /metrics)"),
            Err(e) => {
                tracing::error!(bind = %bind, port = metrics_port, error = %e, "could not bind the metrics port");
                return ExitCode::FAILURE;
            }
        }
    }
    let signals = srv.clone();
    // Registered before serving: a SIGTERM right after start-up must still
    // shut down cleanly rather than kill the process.
    let registered = register_signals();
    tokio::spawn(async move {
        wait_for_signal(registered).await;
        tracing::info!("received a shutdown signal, shutting down");
        // As Redis (whose `serverCron` acts on the signal only between
        // commands): a running script ends first, while clients still get
        // `-BUSY` and may `SHUTDOWN NOSAVE` meanwhile.
        while signals.scripting.busy.running_ms().is_some() && !signals.shutting_down() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        signals.request_shutdown();
    });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        port = srv.port.load(std::sync::atomic::Ordering::Relaxed),
        pid = std::process::id(),
        "Amber is ready to accept connections"
    );
    amber_server::run(srv.clone(), listeners).await;
    // A running BGSAVE finishes its file first; a full sync's snapshot
    // finishes reading the keyspace before the arena closes.
    while srv
        .rdb
        .bgsave_in_progress
        .load(std::sync::atomic::Ordering::Acquire)
        || srv.keyspace.snapshot_running()
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // `SHUTDOWN NOSAVE` during a long script asked it to stop (Redis exits
    // under it): the arena is marked clean only once it has, and is left
    // to recover as after a crash if it does not stop soon.
    let stop_deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while srv.scripting.busy.running_ms().is_some() {
        if std::time::Instant::now() >= stop_deadline {
            tracing::warn!("a script is still running: exiting without closing the arena");
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // SIGTERM / SIGINT with save points and no arena persistence: the RDB
    // file is the only copy that survives, as in Redis (`SHUTDOWN` already
    // decided for itself).
    let save_points = !srv.config.get("save").unwrap_or_default().is_empty();
    let pmem = srv.config.get("persistence").as_deref() == Some("pmem");
    if save_points
        && !pmem
        && !srv
            .rdb
            .shutdown_saved
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        let _gate = srv.keyspace.exclusive();
        if let Err(e) = amber_server::snapshot::save_and_sync(&srv) {
            tracing::error!(error = %e, "Error trying to save the DB before exiting");
        }
    }
    // Every acknowledged write is already in the arena; this syncs it and
    // marks the shutdown clean.
    if let Err(e) = srv.keyspace.close() {
        tracing::error!(error = %e, "closing the arena failed");
        return ExitCode::FAILURE;
    }
    tracing::info!("Amber is now ready to exit, bye bye...");
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT streams, created at once so their handlers are installed.
type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn register_signals() -> Signals {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

async fn wait_for_signal(signals: Signals) {
    match signals {
        Some((mut term, mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        None => std::future::pending::<()>().await,
    }
}
