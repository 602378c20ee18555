//! The HTTP endpoint of `metrics.listener`: `GET /metrics` (Prometheus'
//! text format) and `GET /ready` (200 once the node serves, 503 before, for
//! load balancer and Kubernetes readiness checks).
//!
//! One request per connection, answered and closed: Prometheus and probes
//! need nothing more, and a server this small is easier to bound than a
//! framework. Requests are capped at [`MAX_REQUEST`] bytes and
//! [`READ_TIMEOUT`], so a slow or hostile client holds one task briefly.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::metrics;
use crate::Broker;
use crate::cluster::Cluster;

const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint asks of the node behind it.
pub trait Probe: Send + Sync + 'static {
    /// `Err(why)` while the node cannot serve clients.
    fn ready(&self) -> Result<(), String>;
    /// Brings the scrape-time metrics up to date.
    fn refresh(&self) -> BoxFuture<'_, ()>;
}

/// The endpoint's state: a probe once the node has started; until then
/// `/metrics` serves what is counted and `/ready` answers 503.
#[derive(Default)]
pub struct Endpoint {
    probe: RwLock<Option<Arc<dyn Probe>>>,
}

impl Endpoint {
    pub fn set_probe(&self, probe: Arc<dyn Probe>) {
        *self.probe.write().expect("probe lock") = Some(probe);
    }

    fn probe(&self) -> Option<Arc<dyn Probe>> {
        self.probe.read().expect("probe lock").clone()
    }
}

/// Binds the endpoint; an address in use is a start-up error, like a listener's.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `listener` until the process ends.
pub async fn serve(listener: TcpListener, endpoint: Arc<Endpoint>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                tokio::spawn(answer(socket, Arc::clone(&endpoint)));
            }
            Err(e) => {
                tracing::warn!("metrics listener: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut socket: TcpStream, endpoint: Arc<Endpoint>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut socket)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let (status, content_type, body) = route(&head, &endpoint).await;
    let head_only = head.starts_with("HEAD ");
    let mut response =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

/// The request line and headers, up to the blank line; `None` if the
/// client sends more than [`MAX_REQUEST`] bytes first or closes.
async fn read_head(socket: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_REQUEST {
            return None;
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
/// Prometheus' text exposition format.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn route(head: &str, endpoint: &Endpoint) -> (&'static str, &'static str, String) {
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET and HEAD\n".into());
    }
    match path {
        "/metrics" => {
            if let Some(probe) = endpoint.probe() {
                probe.refresh().await;
            }
            ("200 OK", EXPOSITION, metrics().encode())
        }
        "/ready" => match endpoint.probe().map(|p| p.ready()) {
            Some(Ok(())) => ("200 OK", TEXT, "ready\n".into()),
            Some(Err(why)) => ("503 Service Unavailable", TEXT, format!("not ready: {why}\n")),
            None => ("503 Service Unavailable", TEXT, "not ready: starting\n".into()),
        },
        "/" => ("200 OK", TEXT, "fjord: GET /metrics (Prometheus), GET /ready\n".into()),
        _ => ("404 Not Found", TEXT, "not found; try /metrics or /ready\n".into()),
    }
}

/// A broker: ready once it serves and the controller counts it live
/// (registered and not fenced), as clients are then sent to it.
pub struct BrokerProbe(pub Arc<Broker>);

impl Probe for BrokerProbe {
    fn ready(&self) -> Result<(), String> {
        let broker = &self.0;
        let image = broker.metadata.image();
        if image.is_live(broker.config.node_id) {
            Ok(())
        } else {
            Err("the controller does not count this broker live (not registered yet, or fenced)".into())
        }
    }

    fn refresh(&self) -> BoxFuture<'_, ()> {
        Box::pin(super::scrape::refresh_broker(&self.0))
    }
}

/// A controller-only node: ready while the metadata quorum has a leader.
pub struct ControllerProbe(pub Arc<Cluster>);

impl Probe for ControllerProbe {
    fn ready(&self) -> Result<(), String> {
        match self.0.metadata.controller_node() {
            Some(_) => Ok(()),
            None => Err("the metadata quorum has no leader".into()),
        }
    }

    fn refresh(&self) -> BoxFuture<'_, ()> {
        super::scrape::refresh_quorum(&self.0);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), String>);

    impl Probe for Fixed {
        fn ready(&self) -> Result<(), String> {
            self.0.clone()
        }
        fn refresh(&self) -> BoxFuture<'_, ()> {
            Box::pin(std::future::ready(()))
        }
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_readiness() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoint = Arc::new(Endpoint::default());
        tokio::spawn(serve(listener, Arc::clone(&endpoint)));
        metrics().request_started(3).finish();

        let ready = get(addr, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        endpoint.set_probe(Arc::new(Fixed(Err("fenced".into()))));
        let ready = get(addr, "GET /ready HTTP/1.1\r\n\r\n").await;
        assert!(ready.starts_with("HTTP/1.1 503") && ready.ends_with("not ready: fenced\n"), "{ready}");
        endpoint.set_probe(Arc::new(Fixed(Ok(()))));
        let ready = get(addr, "GET /ready HTTP/1.0\r\n\r\n").await;
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

        let scraped = get(addr, "GET /metrics HTTP/1.1\r\nAccept: text/plain\r\n\r\n").await;
        assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
        assert!(scraped.contains("Content-Type: text/plain; version=0.0.4"), "{scraped}");
        assert!(scraped.contains("fjord_requests_total{api=\"Metadata\"}"), "{scraped}");
        let (head, body) = scraped.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");

        let head_only = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        // Endless headers: the connection is dropped, and the server goes on.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let junk = vec![b'a'; MAX_REQUEST + 2048];
        let _ = s.write_all(&junk).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert!(out.is_empty());
        assert!(get(addr, "GET /ready HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));
    }
}
