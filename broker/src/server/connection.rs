//! One client connection. The reader reads a frame, parses the header and
//! runs the handler up to its point of waiting, in arrival order; the
//! writer awaits each reply in that same order and writes it. So responses
//! leave in request order (Kafka's guarantee), while a request waiting for
//! acks or a long poll does not stop the next one from being read. The
//! queue between them is bounded (`queued.max.requests`), so a client that
//! pipelines without reading is slowed, not buffered without end.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::Broker;
use crate::handlers::{Pending, Reply, RequestContext, dispatch};
use crate::protocol::frame::{FrameError, parse_request, read_frame};
use crate::protocol::vectored::write_all_vectored;

/// Replies queued per connection; the reader waits when the writer is this far behind.
const MAX_QUEUED_PER_CONNECTION: usize = 64;

pub async fn run(broker: Arc<Broker>, listener: Arc<str>, socket: TcpStream, peer: SocketAddr) {
    let (mut reader, mut writer) = socket.into_split();
    let max_bytes = broker.config.socket_request_max_bytes;
    let queued = broker.config.queued_max_requests.clamp(1, MAX_QUEUED_PER_CONNECTION);
    let (tx, mut rx) = mpsc::channel::<Pending>(queued);
    let write_task = tokio::spawn(async move {
        while let Some(pending) = rx.recv().await {
            match pending.await {
                Reply::Frame(chunks) => {
                    if let Err(e) = write_all_vectored(&mut writer, &chunks).await {
                        tracing::debug!(%peer, "write: {e}");
                        return;
                    }
                }
                Reply::Nothing => {}
                Reply::Close(why) => {
                    tracing::debug!(%peer, "closing: {why}");
                    return;
                }
            }
        }
        let _ = writer.shutdown().await;
    });
    let result = read_loop(&broker, &listener, &mut reader, peer, max_bytes, &tx).await;
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

async fn read_loop(
    broker: &Arc<Broker>,
    listener: &Arc<str>,
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    max_bytes: i32,
    tx: &mpsc::Sender<Pending>,
) -> Result<(), FrameError> {
    while let Some(frame) = read_frame(reader, max_bytes).await? {
        let request = parse_request(frame)?;
        let ctx = RequestContext {
            broker: Arc::clone(broker),
            listener: Arc::clone(listener),
            peer,
            api_version: request.header.request_api_version,
            correlation_id: request.header.correlation_id,
            client_id: request.header.client_id.as_deref().unwrap_or_default().to_string(),
        };
        let pending = dispatch(ctx, request).await?;
        if tx.send(pending).await.is_err() {
            // The writer stopped (a Close reply or a dead socket).
            return Ok(());
        }
    }
    Ok(())
}
