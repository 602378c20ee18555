//! Telling a stalled connection from a slow one.
//!
//! A link that drops packets without a reset (a host cut off, a firewall
//! rule, a pulled cable) leaves both ends' sockets open: nothing errors, and
//! once the link is back TCP resumes only at its next retransmission, its
//! timeout doubling from 0.2 s (0.2, 0.4, ... 6.4 s and on). So a connection
//! is judged by what it hears: it is *stalled* once the peer has owed an
//! answer and nothing at all has been heard from it for
//! `raft.transport.stall.timeout.ms` ([`RaftConfig::stall_timeout`]). The
//! peer's manager then drops it, failing its calls as unreachable, and dials
//! anew (or waits for the peer's dial).
//!
//! *Heard* is any byte read from the connection, or a write that had to wait
//! for room in the socket and got it: room opens only when the peer's TCP
//! acknowledges, so a large append crawling out over a slow link is not
//! silence. Bytes, not per-request latency: one large append or snapshot may
//! take long, but on a healthy link something arrives at least every
//! heartbeat interval while anything is owed (the answers to heartbeats).
//! What this cannot see: data that fit in the kernel's send buffer (up to
//! `net.ipv4.tcp_wmem`'s maximum, 4 MiB by default) leaving slowly while the
//! peer has nothing to send but the answers queued behind it. A link on
//! which that takes longer than the stall timeout (slower than about 2 MB/s)
//! already fails openraft's appends, which time out after one heartbeat
//! interval.
//!
//! *Owed* starts when a group request that is answered promptly is queued
//! (see [`answered_promptly`]) and ends with an envelope received while no
//! request waits for its answer. A request the caller gave up on (timed
//! out) keeps the clock running: on a dead link every heartbeat times out
//! after one interval, so no single request ever waits long.
//!
//! A read-side deadline rather than `TCP_USER_TIMEOUT`: that one counts
//! unacknowledged *sent* data, misfires while the peer's window is zero
//! (back-pressure, not death), and sees nothing when only the other
//! direction died.
//!
//! Ownership: one [`Heard`] per peer; the reader and writer of its current
//! connection stamp it (through [`HeardReader`] and [`HeardWriter`]), and
//! that connection's watchdog reads it, all in the peer's manager task.
//!
//! [`RaftConfig::stall_timeout`]: crate::config::RaftConfig::stall_timeout

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::frame::Rpc;

/// [`Heard`]'s mark while the reader waits for this node's own budget.
const PAUSED: u64 = u64::MAX;

/// When the peer was last heard from. See the module doc.
pub(crate) struct Heard {
    epoch: Instant,
    /// Microseconds from `epoch`, or [`PAUSED`]. An atomic so that the hot
    /// path (every read) costs a clock read and a store, no lock.
    at_us: AtomicU64,
}

impl Heard {
    pub fn new() -> Self {
        Self { epoch: Instant::now(), at_us: AtomicU64::new(0) }
    }

    /// The peer was heard from just now.
    pub fn stamp(&self) {
        let us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(PAUSED - 1).min(PAUSED - 1);
        self.at_us.store(us, Ordering::Relaxed);
    }

    /// The reader stopped to wait for this node's inbound budget: what the
    /// peer sends meanwhile waits in the socket, and that is not its silence.
    /// Ends with the next [`Heard::stamp`].
    pub fn pause(&self) {
        self.at_us.store(PAUSED, Ordering::Relaxed);
    }

    /// When the peer was last heard from; `now` while the reader is paused.
    pub fn last(&self, now: Instant) -> Instant {
        match self.at_us.load(Ordering::Relaxed) {
            PAUSED => now,
            us => self.epoch + Duration::from_micros(us),
        }
    }
}

/// Whether a request's answer comes without waiting on anything slow, so
/// that waiting for it starts the owed clock. A snapshot is installed before
/// it is answered, and a control request is the broker's (a metadata
/// proposal waits for its commit): either may take seconds on a healthy link.
pub(crate) fn answered_promptly(rpc: Rpc) -> bool {
    match rpc {
        Rpc::Append | Rpc::Heartbeat | Rpc::Vote | Rpc::PreVote | Rpc::TransferLeader => true,
        Rpc::Snapshot | Rpc::Control => false,
    }
}

/// How long the peer has been silent while owing an answer; `None` when it
/// owes nothing. Silence starts at the later of the two: a request queued
/// after a long quiet spell has waited only since it was queued.
pub(crate) fn silence(owed_since: Option<Instant>, heard: Instant, now: Instant) -> Option<Duration> {
    owed_since.map(|owed| now.saturating_duration_since(owed.max(heard)))
}

/// A connection's read half that stamps [`Heard`] on every byte read.
pub(crate) struct HeardReader<'a, R> {
    inner: R,
    heard: &'a Heard,
}

impl<'a, R> HeardReader<'a, R> {
    pub fn new(inner: R, heard: &'a Heard) -> Self {
        Self { inner, heard }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HeardReader<'_, R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.heard.stamp();
        }
        polled
    }
}

/// A connection's write half that stamps [`Heard`] when a write that found
/// the socket full goes on: the peer's TCP acknowledged.
pub(crate) struct HeardWriter<'a, W> {
    inner: W,
    heard: &'a Heard,
    blocked: bool,
}

impl<'a, W> HeardWriter<'a, W> {
    pub fn new(inner: W, heard: &'a Heard) -> Self {
        Self { inner, heard, blocked: false }
    }

    fn note<T>(&mut self, polled: &Poll<io::Result<T>>, progressed: impl FnOnce(&T) -> bool) {
        match polled {
            Poll::Pending => self.blocked = true,
            Poll::Ready(Ok(v)) if self.blocked && progressed(v) => {
                self.blocked = false;
                self.heard.stamp();
            }
            Poll::Ready(_) => {}
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HeardWriter<'_, W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(&polled, |n| *n > 0);
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.note(&polled, |_| true);
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn silence_counts_from_the_later_of_owed_and_heard() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        // (owed since, heard at, now) -> silence
        let cases = [
            (None, 0, 5_000, None),
            (Some(100), 0, 2_100, Some(2_000)),   // owed after the last byte: from the request
            (Some(100), 1_500, 2_100, Some(600)), // heard since: from the last byte
            (Some(3_000), 0, 2_000, Some(0)),     // clocks read out of order: no silence
        ];
        for (owed, heard, now, want) in cases {
            let got = silence(owed.map(s), s(heard), s(now));
            assert_eq!(got, want.map(Duration::from_millis), "owed {owed:?} heard {heard} now {now}");
        }
    }

    #[tokio::test]
    async fn reads_and_drained_writes_are_heard_and_a_pause_is_not_silence() {
        let heard = Heard::new();
        let (a, mut b) = tokio::io::duplex(64);
        let (ra, wa) = tokio::io::split(a);
        let (mut r, mut w) = (HeardReader::new(ra, &heard), HeardWriter::new(wa, &heard));
        let start = heard.last(Instant::now());

        // Writes that fit the buffer say nothing about the peer.
        w.write_all(&[1; 32]).await.unwrap();
        assert_eq!(heard.last(Instant::now()), start);
        // A write that blocks and goes on once the peer reads: heard.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let drain = async {
            let mut buf = vec![0; 1024];
            b.read_exact(&mut buf).await.unwrap();
            b
        };
        let (written, mut b) = tokio::join!(w.write_all(&[2; 1024 - 32]), drain);
        written.unwrap();
        let after_write = heard.last(Instant::now());
        assert!(after_write > start, "a drained write is heard");

        tokio::time::sleep(Duration::from_millis(5)).await;
        b.write_all(b"x").await.unwrap();
        r.read_exact(&mut [0]).await.unwrap();
        assert!(heard.last(Instant::now()) > after_write, "a read is heard");

        heard.pause();
        let now = Instant::now() + Duration::from_secs(60);
        assert_eq!(heard.last(now), now, "paused: never silent");
        heard.stamp();
        assert!(heard.last(now) < now);
    }

    #[test]
    fn only_promptly_answered_requests_start_the_clock() {
        assert!(answered_promptly(Rpc::Heartbeat) && answered_promptly(Rpc::Append) && answered_promptly(Rpc::Vote));
        assert!(!answered_promptly(Rpc::Snapshot) && !answered_promptly(Rpc::Control));
    }
}
