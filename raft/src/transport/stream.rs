//! The byte stream under a peer connection: plain TCP, or TLS over it when
//! the broker configures TLS between nodes ([`TransportTls`]).
//!
//! Both sides of a TLS connection are nodes: the dialler presents its own
//! certificate as a client certificate, and the acceptor asks for one as
//! its listener's `ssl.client.auth` says. The raft handshake (hello,
//! dial-back) runs inside the TLS session, so a node id is only believed
//! from a peer that completed TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// TLS between nodes: the acceptor for inbound connections and the
/// connector for outbound ones, both built by the broker from its config.
#[derive(Clone)]
pub struct TransportTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl TransportTls {
    pub fn new(server: Arc<rustls::ServerConfig>, client: Arc<rustls::ClientConfig>) -> Self {
        Self { acceptor: TlsAcceptor::from(server), connector: TlsConnector::from(client) }
    }
}

/// A connection to a peer, either way.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Dials `addr` (`host:port`, `[v6]:port`) and, with `tls`, runs the TLS
/// handshake checking the peer's certificate against `host`. The TCP
/// connect alone is given up after `syn_timeout`: a SYN lost to a dead link
/// is resent by the kernel only after 1, 3, 7 s ..., so once the link is
/// back a fresh dial gets through sooner than the one still waiting.
pub(crate) async fn connect(tls: Option<&TransportTls>, addr: &str, syn_timeout: Duration) -> io::Result<Stream> {
    let tcp = tokio::time::timeout(syn_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("no answer to the connect in {syn_timeout:?}")))??;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else { return Ok(Stream::Plain(tcp)) };
    let name = server_name(addr)?;
    let session = tls.connector.connect(name, tcp).await?;
    Ok(Stream::Tls(Box::new(TlsStream::Client(session))))
}

/// Wraps an accepted connection, running the TLS handshake with `tls`.
pub(crate) async fn accept(tls: Option<&TransportTls>, tcp: TcpStream) -> io::Result<Stream> {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else { return Ok(Stream::Plain(tcp)) };
    let session = tls.acceptor.accept(tcp).await?;
    Ok(Stream::Tls(Box::new(TlsStream::Server(session))))
}

/// The host part of `addr`, as the name its certificate must carry (an IP
/// address is matched against the certificate's IP addresses).
fn server_name(addr: &str) -> io::Result<ServerName<'static>> {
    let host = match addr.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(h, _)| h),
        None => addr.rsplit_once(':').map(|(h, _)| h),
    };
    let host = host.filter(|h| !h.is_empty()).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {addr}")))?;
    ServerName::try_from(host.to_string()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_address_host() {
        assert_eq!(server_name("broker1.example:9093").unwrap(), ServerName::try_from("broker1.example").unwrap());
        assert!(matches!(server_name("127.0.0.1:9093").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("[::1]:9093").unwrap(), ServerName::IpAddress(_)));
        assert!(server_name(":9093").is_err());
    }
}
