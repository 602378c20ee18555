//! How the node is watched: the metrics endpoint and the log lines.

use std::net::SocketAddr;

/// `tracing.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON layout).
    Json,
}

/// `metrics.listener`, `tracing.format`, `tracing.level`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observability {
    /// Where `GET /metrics` and `GET /ready` are served; `None`: nowhere.
    pub metrics_listener: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins over it.
    pub log_level: Option<String>,
}

impl Observability {
    /// The log filter: `RUST_LOG`, else `tracing.level`, else info (openraft's
    /// own chatter kept to warnings: it logs every election at info, and
    /// Fjord logs the leader changes that matter itself).
    pub fn log_filter(&self) -> String {
        match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => v,
            _ => self.log_level.clone().unwrap_or_else(|| "info,openraft=warn,openraft::raft::responder=error".to_string()),
        }
    }
}
