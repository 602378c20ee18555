//! One client connection. The reader reads a frame, parses the header and
//! runs the handler up to its point of waiting, in arrival order; the
//! writer awaits each reply in that same order and writes it. So responses
//! leave in request order (Kafka's guarantee), while a request waiting for
//! acks or a long poll does not stop the next one from being read. The
//! queue between them is bounded (`queued.max.requests`), so a client that
//! pipelines without reading is slowed, not buffered without end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::session::Session;
use super::tls::{self, Tls};
use crate::Broker;
use crate::config::SecurityProtocol;
use crate::handlers::{Pending, Reply, RequestContext, dispatch};
use crate::metrics::{RequestTimer, metrics};
use crate::protocol::frame::{FrameError, parse_request, read_frame};
use crate::protocol::vectored::write_all_vectored;
use crate::security::KafkaPrincipal;

/// Kafka's default `connection.failed.authentication.delay.ms`.
const FAILED_AUTHENTICATION_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
/// Replies queued per connection; the reader waits when the writer is this far behind.
const MAX_QUEUED_PER_CONNECTION: usize = 64;

/// How long a client has for its TLS handshake; a peer that opens a socket
/// and sends nothing must not hold a task and a descriptor for ever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection: the handshake (bounded by [`TLS_HANDSHAKE_TIMEOUT`]),
/// the principal from the client's certificate, then [`run`]. A failed
/// handshake (plaintext to this port, a certificate from an unknown CA, none
/// where one is required) closes the socket with one log line.
pub async fn run_tls(broker: Arc<Broker>, listener: Arc<str>, tls: Tls, socket: TcpStream, peer: SocketAddr) {
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor.accept(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            metrics().failed_authentication(&listener);
            tracing::info!(%peer, %listener, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            metrics().failed_authentication(&listener);
            tracing::info!(%peer, %listener, "TLS handshake did not finish within {TLS_HANDSHAKE_TIMEOUT:?}");
            return;
        }
    };
    // On SASL_SSL the principal is SASL's to set (Kafka's SaslServerAuthenticator);
    // the certificate, if any, only had to pass the handshake.
    let sasl = broker.config.listeners.iter().any(|l| *l.name == *listener && l.security_protocol == SecurityProtocol::SaslSsl);
    let certificates = if sasl { None } else { stream.get_ref().1.peer_certificates() };
    let principal = match tls::principal(&tls.settings, certificates) {
        Ok(p) => p,
        Err(why) => {
            metrics().failed_authentication(&listener);
            tracing::info!(%peer, %listener, "TLS client refused: {why}");
            return;
        }
    };
    if principal != KafkaPrincipal::anonymous() {
        tracing::info!(%peer, %listener, %principal, "authenticated by TLS client certificate");
    }
    run(broker, listener, stream, peer, principal).await;
}

/// Serves one connection, plain or TLS, as `principal` (`User:ANONYMOUS`
/// until SASL says otherwise on a connection without a client certificate).
pub async fn run<S>(broker: Arc<Broker>, listener: Arc<str>, socket: S, peer: SocketAddr, principal: KafkaPrincipal)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let protocol =
        broker.config.listeners.iter().find(|l| *l.name == *listener).map_or(SecurityProtocol::Plaintext, |l| l.security_protocol);
    let session = Arc::new(Session::new(Arc::clone(&listener), protocol, peer, principal));
    let (mut reader, mut writer) = tokio::io::split(socket);
    let max_bytes = broker.config.socket_request_max_bytes;
    let queued = broker.config.queued_max_requests.clamp(1, MAX_QUEUED_PER_CONNECTION);
    let (tx, mut rx) = mpsc::channel::<(Pending, RequestTimer)>(queued);
    let write_task = tokio::spawn(async move {
        while let Some((pending, timer)) = rx.recv().await {
            match pending.await {
                Reply::Frame(chunks) => {
                    if let Err(e) = write_all_vectored(&mut writer, &chunks).await {
                        tracing::debug!(%peer, "write: {e}");
                        return;
                    }
                    timer.finish();
                }
                Reply::Nothing => timer.finish(),
                Reply::Close(why) => {
                    tracing::debug!(%peer, "closing: {why}");
                    // The read half keeps the socket open: say so now.
                    let _ = writer.shutdown().await;
                    return;
                }
            }
        }
        let _ = writer.shutdown().await;
    });
    let result = read_loop(&broker, &session, &mut reader, max_bytes, &tx).await;
    if let Err(e) = result {
        match e {
            FrameError::Io(_) => tracing::debug!(%peer, "connection: {e}"),
            _ => tracing::info!(%peer, "closing connection: {e}"),
        }
        // Replies not yet written are dropped with the connection, as Kafka does.
        write_task.abort();
        return;
    }
    drop(tx);
    let _ = write_task.await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    broker: &Arc<Broker>,
    session: &Arc<Session>,
    reader: &mut R,
    max_bytes: i32,
    tx: &mpsc::Sender<(Pending, RequestTimer)>,
) -> Result<(), FrameError> {
    while let Some(frame) = read_frame(reader, max_bytes).await? {
        let request = parse_request(frame)?;
        let timer = metrics().request_started(request.header.request_api_key);
        // SASL listeners serve only ApiVersions and SASL's own requests
        // before a login succeeds; anything else closes the connection (as
        // Kafka does), after the replies already queued are written.
        if let Err(why) = session.admits(request.header.request_api_key) {
            tracing::info!(peer = %session.peer, listener = %session.listener, "closing connection: {why}");
            return Ok(());
        }
        let ctx = RequestContext {
            broker: Arc::clone(broker),
            listener: Arc::clone(&session.listener),
            peer: session.peer,
            api_version: request.header.request_api_version,
            correlation_id: request.header.correlation_id,
            client_id: request.header.client_id.as_deref().unwrap_or_default().to_string(),
            session: Arc::clone(session),
        };
        let pending = dispatch(ctx, request).await?;
        if tx.send((pending, timer)).await.is_err() {
            // The writer stopped (a Close reply or a dead socket).
            return Ok(());
        }
        // A failed SASL login: its answer is written, then the connection
        // closes after Kafka's `connection.failed.authentication.delay.ms`
        // (100 ms), so that the client reads the error before the close.
        if session.is_sasl() && session.sasl().failed {
            tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
            tracing::info!(peer = %session.peer, listener = %session.listener, "closing connection after a failed SASL authentication");
            return Ok(());
        }
    }
    Ok(())
}
