//! Listeners: one TCP listener per entry of `listeners`, one task per
//! connection (see [`connection`]); SSL and SASL_SSL listeners speak TLS
//! (see [`tls`]).

pub mod connection;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Broker;
use crate::config::BrokerConfig;
use crate::security::KafkaPrincipal;

/// Why a listener could not open; `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
#[error("listener {name} on {addr}: {source}")]
pub struct ListenError {
    pub name: String,
    pub addr: String,
    pub source: std::io::Error,
}

/// A bound listener, not yet accepting.
pub struct Bound {
    pub name: Arc<str>,
    pub listener: TcpListener,
    /// Set for SSL and SASL_SSL listeners.
    pub tls: Option<tls::Tls>,
}

/// Binds every configured listener; fails on the first that cannot bind.
pub async fn bind(config: &BrokerConfig) -> Result<Vec<Bound>, ListenError> {
    let mut out = Vec::new();
    for l in &config.listeners {
        // An empty host binds every interface, as Kafka's does.
        let host = if l.host.is_empty() { "0.0.0.0" } else { l.host.as_str() };
        let addr = format!("{host}:{}", l.port);
        let fail = |source| ListenError { name: l.name.clone(), addr: addr.clone(), source };
        // The settings were checked when the config was read; this only builds rustls.
        let tls = match config.tls.get(&l.name) {
            Some(settings) => Some(tls::acceptor(settings).map_err(|e| fail(std::io::Error::other(format!("TLS: {e}"))))?),
            None => None,
        };
        let listener = TcpListener::bind(&addr).await.map_err(fail)?;
        out.push(Bound { name: Arc::from(l.name.as_str()), listener, tls });
    }
    Ok(out)
}

/// Accepts connections on `bound` until the process ends.
pub async fn serve(broker: Arc<Broker>, bound: Bound) {
    let Bound { name, listener, tls } = bound;
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let _ = socket.set_nodelay(true);
                let (broker, name) = (Arc::clone(&broker), Arc::clone(&name));
                let open = crate::metrics::metrics().connection_opened(&name);
                match &tls {
                    None => tokio::spawn(async move {
                        connection::run(broker, name, socket, peer, KafkaPrincipal::anonymous()).await;
                        drop(open);
                    }),
                    Some(tls) => {
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            connection::run_tls(broker, name, tls, socket, peer).await;
                            drop(open);
                        })
                    }
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(listener = %name, "accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// The local address of a bound listener (port 0 resolved), for logs.
pub fn local_addr(b: &Bound) -> Option<SocketAddr> {
    b.listener.local_addr().ok()
}
