//! `fjord`: the broker binary.
//!
//! `fjord start [--config server.properties] [--override key=value]...`
//! `fjord dev-cluster --brokers N [--racks az1,az2,az3] [--base-port 9092] ...`
//! `fjord bench --bootstrap-server HOST:PORT [--partitions N] [--acks all] ...`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use fjord_broker::config::BrokerConfig;
use fjord_broker::config::observability::{LogFormat, Observability};
use fjord_broker::dev_cluster::DevClusterArgs;
use fjord_broker::metrics::http::{self, Endpoint};
use fjord_broker::{Broker, server};

#[derive(Parser)]
#[command(name = "fjord", version, about = "A Kafka-compatible streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker. With no config: one node on 127.0.0.1:9092, data in ./data.
    Start {
        /// A Kafka-style server.properties file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Set one config key, over the file (repeatable): --override log.dirs=/tmp/d
        #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_override)]
        overrides: Vec<(String, String)>,
    },
    /// Run a local cluster: N `fjord start` processes on 127.0.0.1, consecutive ports, racks round robin.
    DevCluster(DevClusterArgs),
    /// Load-test any Kafka-compatible broker: throughput, publish and end-to-end latency, JSON and PNG plots.
    Bench(fjord_client::bench::BenchArgs),
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, overrides) = match cli.command {
        Command::Start { config, overrides } => (config, overrides),
        Command::DevCluster(args) => return fjord_broker::dev_cluster::run(args),
        Command::Bench(args) => return fjord_client::bench::run(args),
    };
    let (config, warnings) = match BrokerConfig::load(config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fjord: config error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logs(&config.observability) {
        eprintln!("fjord: config error: {e}");
        return ExitCode::from(2);
    }
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("fjord").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fjord: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// Log lines on stderr, as text or JSON, filtered by `RUST_LOG` or `tracing.level`.
fn init_logs(o: &Observability) -> Result<(), String> {
    let filter = o.log_filter();
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| format!("log filter {filter:?}: {e}"))?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match o.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    Ok(())
}

/// Binds `metrics.listener`, if set, and serves it; the probe comes once the node has started.
async fn start_metrics(config: &BrokerConfig) -> Result<Arc<Endpoint>, String> {
    let endpoint = Arc::new(Endpoint::default());
    if let Some(addr) = config.observability.metrics_listener {
        let listener = http::bind(addr).await.map_err(|e| format!("metrics.listener on {addr}: {e}"))?;
        tracing::info!("metrics on http://{addr}/metrics, readiness on /ready");
        tokio::spawn(http::serve(listener, Arc::clone(&endpoint)));
    }
    Ok(endpoint)
}

async fn run(config: BrokerConfig) -> ExitCode {
    // Signal handlers before the ports: once a port is bound a supervisor may
    // see it accept and send SIGTERM, which must mean a clean stop even while
    // the broker is still starting.
    let stop = match StopSignals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fjord: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = match start_metrics(&config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fjord: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !config.is_broker() {
        return run_controller(config, stop, endpoint).await;
    }
    // Listeners first: a port in use is reported before any data is touched.
    let bound = match server::bind(&config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fjord: {e}");
            return ExitCode::FAILURE;
        }
    };
    let broker = match Broker::start(config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("fjord: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listening: Vec<String> =
        bound.iter().map(|b| format!("{}://{}", b.name, server::local_addr(b).map_or("?".into(), |a| a.to_string()))).collect();
    let dirs: Vec<String> = broker.config.log_dirs.iter().map(|d| d.display().to_string()).collect();
    tracing::info!(node = broker.config.node_id, cluster = %broker.cluster_id(), "fjord started: listening on {}, data in {}", listening.join(", "), dirs.join(","));
    for b in bound {
        tokio::spawn(server::serve(Arc::clone(&broker), b));
    }
    endpoint.set_probe(Arc::new(http::BrokerProbe(Arc::clone(&broker))));
    let every = std::time::Duration::from_millis(broker.config.log.retention_check_interval_ms.max(1) as u64);
    tokio::spawn(fjord_broker::maintenance::run(Arc::clone(&broker), every));
    tokio::spawn(fjord_broker::partition::cleaner::run(Arc::clone(&broker)));
    if let Some(store) = &broker.remote {
        let every = std::time::Duration::from_millis(broker.config.remote_log_manager_task_interval_ms.max(1) as u64);
        tokio::spawn(fjord_broker::partition::tiering::run(Arc::clone(&broker), Arc::clone(store), every));
    }
    stop.wait().await;
    tracing::info!("shutting down");
    broker.shutdown().await;
    ExitCode::SUCCESS
}

/// A controller-only node: the metadata quorum on its CONTROLLER listener.
async fn run_controller(config: BrokerConfig, stop: StopSignals, endpoint: Arc<Endpoint>) -> ExitCode {
    let controller = match fjord_broker::controller::Controller::start(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fjord: {e}");
            return ExitCode::FAILURE;
        }
    };
    endpoint.set_probe(Arc::new(http::ControllerProbe(Arc::clone(&controller.cluster))));
    let config = &controller.cluster.config;
    let dirs: Vec<String> = config.log_dirs.iter().map(|d| d.display().to_string()).collect();
    tracing::info!(
        node = config.node_id,
        "fjord controller started: metadata quorum on {}, data in {}",
        controller.raft_addr(),
        dirs.join(",")
    );
    stop.wait().await;
    tracing::info!("shutting down");
    controller.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM and SIGINT (Ctrl-C), registered up front so that a signal which
/// arrives during start-up is queued rather than killing the process.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
