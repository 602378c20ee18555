//! One remote broker: the single connection to it, the queue of messages
//! waiting to be written, the requests waiting for answers, and counters.
//!
//! Ownership: the [`super::Transport`] creates one [`Peer`] per remote node
//! id and keeps it for its lifetime; every group's network client holds an
//! `Arc` to it. One manager task per peer owns the connection: it dials (this
//! node has the lower id) or takes the connection the listener accepted
//! (higher id), and runs a writer, a reader and a watchdog on it until it
//! fails or stalls (see [`super::liveness`]). Any task may enqueue; only the
//! writer dequeues.
//!
//! Coalescing: heartbeats, votes and their answers *linger* up to
//! `raft.transport.linger.ms` for company, so that the groups' randomly
//! phased ticks share envelopes; anything else (appends with entries,
//! snapshots, their answers) is written at once and takes every lingering
//! message along. While the writer is busy, whatever is queued meanwhile goes
//! into the next envelope too. Lingering messages go first in an envelope.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::frame::{self, Frame, FrameError, Header, Kind, Message, Rpc};
use super::liveness::{self, Heard, HeardReader, HeardWriter};
use super::server::{self, Dispatch};
use super::stream::{self, Stream, TransportTls};
use crate::config::RaftConfig;
use crate::registry::GroupId;

/// Whether a message may wait for company before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Linger,
    Now,
}

/// Why a call to a peer failed, as the network client maps it for openraft.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection, or it was lost before the answer came: back off.
    #[error("peer {0} unreachable: {1}")]
    Unreachable(u64, &'static str),
    /// No answer (or no room in the in-flight budget) before the deadline.
    #[error("no answer from peer {0} in time")]
    Timeout(u64),
    /// The peer answered with a failure (unknown group, stopped raft).
    #[error("peer {0} failed the request: {1}")]
    Remote(u64, String),
}

/// Totals since the peer was created; see [`Peer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub envelopes_sent: u64,
    pub envelopes_received: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Connections established (a reconnect adds one).
    pub connections: u64,
    /// Connections dropped as stalled: the peer silent while owing an
    /// answer, or asking us to dial while we heard nothing on ours.
    pub stalls: u64,
}

#[derive(Default)]
struct Counters {
    envelopes_sent: AtomicU64,
    envelopes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    connections: AtomicU64,
    stalls: AtomicU64,
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// A request waiting for its answer. Its permit returns its bytes to the
/// in-flight budget when the answer comes or the request is dropped.
struct Pending {
    rpc: Rpc,
    reply: oneshot::Sender<Message>,
    _permit: OwnedSemaphorePermit,
}

/// What the writer and the callers share, under one lock.
#[derive(Default)]
struct State {
    /// Bumped per connection; answers computed for an older one are dropped.
    generation: u64,
    connected: bool,
    lingering: VecDeque<Bytes>,
    urgent: VecDeque<Bytes>,
    /// When the oldest lingering message was queued.
    oldest_lingering: Option<Instant>,
    pending: HashMap<u64, Pending>,
    /// Since when the peer has owed a prompt answer without an envelope
    /// from it; `None` once one came with nothing pending. See [`super::liveness`].
    owed_since: Option<Instant>,
}

/// See the module doc.
pub struct Peer {
    local: u64,
    remote: u64,
    config: Arc<RaftConfig>,
    addr: Mutex<Option<String>>,
    state: Mutex<State>,
    wake: Notify,
    /// Cuts the manager's wait short: the dialler redials at once (the peer
    /// asked for it), the acceptor asks the peer to dial (a call found no connection).
    connect_now: Notify,
    /// Where this node listens, for asking a lower-id peer to dial it.
    advertised: Arc<str>,
    next_request_id: AtomicU64,
    /// Bytes of unanswered requests we sent: data (appends with entries, snapshots) ...
    outbound_data: Arc<Semaphore>,
    /// ... and heartbeats and votes, apart, so that a full data budget never delays them.
    outbound_control: Arc<Semaphore>,
    /// Bytes of requests from the peer we are still serving.
    inbound: Arc<Semaphore>,
    counters: Counters,
    /// When the peer was last heard from, on the current connection.
    heard: Heard,
    /// Connections the listener accepted from this peer (when it dials us).
    accepted: mpsc::Sender<Stream>,
    /// TLS between nodes, if configured: every connection, both ways.
    tls: Option<TransportTls>,
}

impl Peer {
    /// A peer and, for the acceptor side, the receiver its manager takes connections from.
    pub(crate) fn new(
        local: u64,
        remote: u64,
        advertised: Arc<str>,
        config: Arc<RaftConfig>,
        tls: Option<TransportTls>,
    ) -> (Arc<Self>, mpsc::Receiver<Stream>) {
        assert_ne!(local, remote, "a node is not its own peer");
        let (accepted, rx) = mpsc::channel(2);
        let budget = config.max_inflight_bytes;
        let peer = Self {
            local,
            remote,
            addr: Mutex::new(None),
            state: Mutex::default(),
            wake: Notify::new(),
            connect_now: Notify::new(),
            advertised,
            next_request_id: AtomicU64::new(1),
            outbound_data: Arc::new(Semaphore::new(budget)),
            outbound_control: Arc::new(Semaphore::new(budget)),
            inbound: Arc::new(Semaphore::new(budget)),
            counters: Counters::default(),
            heard: Heard::new(),
            accepted,
            config,
            tls,
        };
        (Arc::new(peer), rx)
    }

    pub fn remote(&self) -> u64 {
        self.remote
    }

    /// This side dials; the other accepts. One connection per pair, used both ways.
    pub fn dials(&self) -> bool {
        self.local < self.remote
    }

    pub fn is_connected(&self) -> bool {
        self.lock().connected
    }

    pub(crate) fn set_addr(&self, addr: &str) {
        let mut a = self.addr.lock().expect("addr lock");
        if a.as_deref() != Some(addr) {
            *a = Some(addr.to_string());
        }
    }

    pub(crate) fn accepted(&self) -> &mpsc::Sender<Stream> {
        &self.accepted
    }

    /// The peer asked us to dial it (it has the higher id and needs the connection).
    pub(crate) fn redial_now(&self) {
        if self.dials() {
            self.connect_now.notify_one();
        }
    }

    pub fn stats(&self) -> PeerStats {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PeerStats {
            envelopes_sent: g(&c.envelopes_sent),
            envelopes_received: g(&c.envelopes_received),
            messages_sent: g(&c.messages_sent),
            messages_received: g(&c.messages_received),
            bytes_sent: g(&c.bytes_sent),
            bytes_received: g(&c.bytes_received),
            connections: g(&c.connections),
            stalls: g(&c.stalls),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("peer state lock")
    }

    /// Sends one request and waits for its answer's body, at most `timeout`
    /// including the wait for room in the in-flight budget.
    pub(crate) async fn call(
        &self,
        rpc: Rpc,
        group: GroupId,
        body: &[u8],
        urgency: Urgency,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let deadline = Instant::now() + timeout;
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let msg = frame::encode_message(&Header { kind: Kind::Request(rpc), group, request_id }, body);
        let pool = match urgency {
            Urgency::Linger => &self.outbound_control,
            Urgency::Now => &self.outbound_data,
        };
        // A message larger than the whole budget takes all of it rather than waiting forever.
        let permits = msg.len().min(self.config.max_inflight_bytes) as u32;
        let permit = match tokio::time::timeout_at(deadline, Arc::clone(pool).acquire_many_owned(permits)).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(CallError::Unreachable(self.remote, "transport closed")),
            Err(_) => return Err(CallError::Timeout(self.remote)),
        };
        let (tx, rx) = oneshot::channel();
        self.enqueue(msg, urgency, None, Some((request_id, Pending { rpc, reply: tx, _permit: permit })))?;
        let mut forget = Forget { peer: self, request_id, armed: true };
        let answer = tokio::time::timeout_at(deadline, rx).await;
        // Answered or failed: the reader or the disconnect took it out of `pending` already.
        forget.armed = answer.is_err();
        match answer {
            Ok(Ok(m)) if m.header.kind == Kind::Failure => {
                Err(CallError::Remote(self.remote, String::from_utf8_lossy(&m.body).into_owned()))
            }
            Ok(Ok(m)) => Ok(m.body),
            Ok(Err(_)) => Err(CallError::Unreachable(self.remote, "connection lost before the answer")),
            Err(_) => Err(CallError::Timeout(self.remote)),
        }
    }

    /// Queues a message for the writer. `generation` (answers) drops it if
    /// the connection it answers is gone.
    fn enqueue(&self, msg: Bytes, urgency: Urgency, generation: Option<u64>, pending: Option<(u64, Pending)>) -> Result<(), CallError> {
        let mut s = self.lock();
        if !s.connected || generation.is_some_and(|g| g != s.generation) {
            if !s.connected && !self.dials() {
                // Only the peer dials; it may not know yet that we need it.
                self.connect_now.notify_one();
            }
            return Err(CallError::Unreachable(self.remote, "not connected"));
        }
        if let Some((id, p)) = pending {
            if s.owed_since.is_none() && liveness::answered_promptly(p.rpc) {
                s.owed_since = Some(Instant::now());
            }
            let old = s.pending.insert(id, p);
            debug_assert!(old.is_none(), "request ids are unique per peer");
        }
        let wake = match urgency {
            Urgency::Linger => {
                s.lingering.push_back(msg);
                s.oldest_lingering.get_or_insert_with(Instant::now);
                s.lingering.len() == 1
            }
            Urgency::Now => {
                s.urgent.push_back(msg);
                true
            }
        };
        drop(s);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Runs one established connection until it fails or the future is
    /// dropped; then everything waiting on it fails as unreachable.
    pub(crate) async fn run_connection(self: &Arc<Self>, stream: Stream, dispatch: Arc<dyn Dispatch>) {
        // Plain TCP splits without a lock between the halves; TLS shares one
        // session state, so its halves take turns.
        match stream {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                self.run_halves(r, w, dispatch).await
            }
            tls @ Stream::Tls(_) => {
                let (r, w) = tokio::io::split(tls);
                self.run_halves(r, w, dispatch).await
            }
        }
    }

    async fn run_halves<R, W>(self: &Arc<Self>, r: R, w: W, dispatch: Arc<dyn Dispatch>)
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send,
    {
        self.heard.stamp();
        let generation = {
            let mut s = self.lock();
            s.generation += 1;
            s.connected = true;
            s.owed_since = None;
            s.generation
        };
        add(&self.counters.connections, 1);
        tracing::info!(local = self.local, remote = self.remote, generation, "raft transport connected");
        let _guard = Disconnect { peer: self, generation };
        let (r, w) = (HeardReader::new(r, &self.heard), HeardWriter::new(w, &self.heard));
        // Biased: woken at once by data and by the watchdog's timer (after
        // the process stood still, say), the reader reads what waits in the
        // socket before the watchdog judges the silence.
        let result = tokio::select! {
            biased;
            r = self.read_loop(BufReader::with_capacity(64 << 10, r), generation, dispatch) => r,
            r = self.write_loop(w, generation) => r,
            silent = self.watch() => {
                add(&self.counters.stalls, 1);
                tracing::warn!(
                    local = self.local, remote = self.remote, generation,
                    "raft transport connection stalled: nothing heard for {silent:?} with answers owed; dropping it"
                );
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(local = self.local, remote = self.remote, "raft transport connection closed: {e}");
        }
    }

    /// Returns, with how long the peer was silent, once the current
    /// connection is stalled: the peer owes an answer and has not been heard
    /// from for `raft.transport.stall.timeout.ms`. See [`super::liveness`].
    async fn watch(&self) -> Duration {
        let stall = self.config.stall_timeout();
        loop {
            let now = Instant::now();
            let owed_since = self.lock().owed_since;
            let next = match liveness::silence(owed_since, self.heard.last(now), now) {
                Some(silent) if silent >= stall => return silent,
                Some(silent) => now + (stall - silent),
                // Anything owed from now on is due a whole timeout later.
                None => now + stall,
            };
            tokio::time::sleep_until(next).await;
        }
    }

    async fn write_loop<W: AsyncWrite + Unpin>(&self, mut w: W, generation: u64) -> Result<(), FrameError> {
        loop {
            let Some(batch) = self.next_batch(generation).await else { return Ok(()) };
            let bytes: usize = batch.iter().map(Bytes::len).sum();
            let mut buf = Vec::with_capacity(frame::FRAME_HEADER_BYTES + 4 + bytes);
            buf.extend_from_slice(&frame::envelope_header(batch.len(), bytes));
            for m in &batch {
                buf.extend_from_slice(m);
            }
            w.write_all(&buf).await?;
            add(&self.counters.envelopes_sent, 1);
            add(&self.counters.messages_sent, batch.len());
            add(&self.counters.bytes_sent, buf.len());
        }
    }

    /// Waits until an envelope is due and takes its messages; `None` once
    /// the connection of `generation` is gone.
    async fn next_batch(&self, generation: u64) -> Option<Vec<Bytes>> {
        let linger = self.config.linger();
        loop {
            let deadline = {
                let mut s = self.lock();
                if !s.connected || s.generation != generation {
                    return None;
                }
                let due = !s.urgent.is_empty() || s.oldest_lingering.is_some_and(|t| t + linger <= Instant::now());
                if due {
                    return Some(take_batch(&mut s, self.config.max_envelope_bytes));
                }
                s.oldest_lingering.map(|t| t + linger)
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        self: &Arc<Self>,
        mut r: BufReader<R>,
        generation: u64,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<(), FrameError> {
        loop {
            let Frame::Envelope(messages) = frame::read_frame(&mut r, self.config.max_frame_bytes).await? else {
                return Err(FrameError::Unexpected("envelope"));
            };
            add(&self.counters.envelopes_received, 1);
            add(&self.counters.messages_received, messages.len());
            for m in messages {
                add(&self.counters.bytes_received, frame::MESSAGE_HEADER_BYTES + m.body.len());
                match m.header.kind {
                    Kind::Request(rpc) => self.serve(rpc, m, generation, &dispatch).await?,
                    Kind::Response(_) | Kind::Failure => self.answer(m)?,
                }
            }
            let mut s = self.lock();
            if s.pending.is_empty() {
                // Nothing waits for an answer: the peer owes nothing (the
                // answers to requests given up on may never come).
                s.owed_since = None;
            }
        }
    }

    /// Decodes a request here, so that a malformed one closes the
    /// connection, and serves it on a task of its own.
    async fn serve(self: &Arc<Self>, rpc: Rpc, m: Message, generation: u64, dispatch: &Arc<dyn Dispatch>) -> Result<(), FrameError> {
        let request = server::decode_request(rpc, &m.body)?;
        let permits = (frame::MESSAGE_HEADER_BYTES + m.body.len()).min(self.config.max_inflight_bytes) as u32;
        // Waiting here stops the reader: TCP pushes back on the peer. What
        // the peer sends meanwhile waits unread, which is not its silence.
        let permit = match Arc::clone(&self.inbound).try_acquire_many_owned(permits) {
            Ok(p) => p,
            Err(_) => {
                self.heard.pause();
                let p = Arc::clone(&self.inbound).acquire_many_owned(permits).await;
                self.heard.stamp();
                p.map_err(|_| FrameError::Unexpected("open budget"))?
            }
        };
        let (peer, dispatch, header) = (Arc::clone(self), Arc::clone(dispatch), m.header);
        tokio::spawn(async move {
            let urgency = request.urgency();
            let (kind, body) = server::serve(dispatch.as_ref(), header.group, request).await;
            let answer = frame::encode_message(&Header { kind, group: header.group, request_id: header.request_id }, &body);
            // Fails only if the connection went meanwhile; the caller then fails too.
            let _ = peer.enqueue(answer, urgency, Some(generation), None);
            drop(permit);
        });
        Ok(())
    }

    fn answer(&self, m: Message) -> Result<(), FrameError> {
        let Some(p) = self.lock().pending.remove(&m.header.request_id) else {
            return Ok(()); // The caller gave up (timeout); the answer is late, not wrong.
        };
        if m.header.kind != Kind::Failure && m.header.kind != Kind::Response(p.rpc) {
            return Err(FrameError::Unexpected("answer of the kind requested"));
        }
        let _ = p.reply.send(m);
        Ok(())
    }

    /// Dials the peer until the transport stops: backoff doubling from
    /// `raft.reconnect.backoff.ms` to `.max.ms`, reset by a connection. The
    /// peer asking us to dial (a dial-back) cuts the backoff short, starts a
    /// fresh dial in place of one in progress, and may replace the
    /// connection we hold (see [`Peer::abandoned_by_peer`]).
    pub(crate) async fn dial_loop(self: Arc<Self>, dispatch: Arc<dyn Dispatch>) {
        debug_assert!(self.dials());
        let mut backoff = self.config.reconnect_backoff_ms;
        loop {
            let addr = self.addr.lock().expect("addr lock").clone();
            if let Some(addr) = addr {
                match self.dial(&addr).await {
                    Some(Ok(stream)) => {
                        backoff = self.config.reconnect_backoff_ms;
                        tokio::select! {
                            _ = self.run_connection(stream, Arc::clone(&dispatch)) => {}
                            _ = self.abandoned_by_peer() => {}
                        }
                    }
                    Some(Err(e)) => tracing::debug!(local = self.local, remote = self.remote, "raft transport dial {addr}: {e}"),
                    None => continue,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                _ = self.connect_now.notified() => {}
            }
            backoff = (backoff * 2).min(self.config.reconnect_backoff_max_ms);
        }
    }

    /// One dial, connect and handshake; `None` if the peer asked us to dial
    /// while this one has been pending for a heartbeat interval: the peer
    /// reached us, so the link works, and a new dial beats one that may wait
    /// for a lost SYN to be resent. A younger dial goes on (the ask crossed
    /// it; a healthy dial takes milliseconds).
    async fn dial(&self, addr: &str) -> Option<Result<Stream, String>> {
        let started = Instant::now();
        let attempt = tokio::time::timeout(self.config.connection_setup_timeout(), self.connect(addr));
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                dialled = &mut attempt => return Some(match dialled {
                    Ok(connected) => connected.map_err(|e| e.to_string()),
                    Err(_) => Err("timed out".to_string()),
                }),
                _ = self.connect_now.notified() => {
                    if started.elapsed() >= self.config.heartbeat_interval() {
                        return None;
                    }
                }
            }
        }
    }

    /// Returns once the peer, asking us to dial while we hold a connection,
    /// shows that it no longer has that one: it asks only when it has none
    /// (it dropped ours as stalled, or lost it to an error whose reset never
    /// reached us). A connection heard from within a heartbeat interval is
    /// kept: the ask crossed it on the way, made before it was accepted.
    async fn abandoned_by_peer(&self) {
        loop {
            self.connect_now.notified().await;
            let now = Instant::now();
            let quiet = now.saturating_duration_since(self.heard.last(now));
            if quiet >= self.config.heartbeat_interval() {
                add(&self.counters.stalls, 1);
                tracing::warn!(
                    local = self.local,
                    remote = self.remote,
                    "raft transport: the peer asks for a connection while ours has been silent for {quiet:?}; replacing it"
                );
                return;
            }
        }
    }

    async fn connect(&self, addr: &str) -> Result<Stream, FrameError> {
        let mut stream = stream::connect(self.tls.as_ref(), addr, self.config.stall_timeout()).await?;
        frame::write_hello(&mut stream, self.local).await?;
        let remote = frame::read_hello(&mut stream).await?;
        if remote != self.remote {
            // The address now belongs to another node: never mix their groups.
            return Err(FrameError::Body { what: "hello", detail: format!("{addr} is node {remote}, not {}", self.remote) });
        }
        // Heard, on this connection: a dial-back that crossed the dial must
        // not judge it by the silence of the one before.
        self.heard.stamp();
        Ok(stream)
    }

    /// Serves connections the listener accepted from this peer; a newer one
    /// replaces the current (the peer restarted, redialled, or dropped ours
    /// as stalled). When a call finds no connection, asks the peer to dial,
    /// with the same backoff as dialling.
    pub(crate) async fn accept_loop(self: Arc<Self>, mut accepted: mpsc::Receiver<Stream>, dispatch: Arc<dyn Dispatch>) {
        debug_assert!(!self.dials());
        let mut backoff = self.config.reconnect_backoff_ms;
        loop {
            let stream = tokio::select! {
                s = accepted.recv() => s,
                _ = self.connect_now.notified() => {
                    // Take the connection if it comes, even while the ask is
                    // under way (it may wait on a dead link), but ask again
                    // only after the backoff.
                    let (me, wait) = (&self, Duration::from_millis(backoff));
                    let ask = async move {
                        me.ask_to_dial().await;
                        tokio::time::sleep(wait).await;
                    };
                    backoff = (backoff * 2).min(self.config.reconnect_backoff_max_ms);
                    tokio::select! {
                        s = accepted.recv() => s,
                        _ = ask => continue,
                    }
                }
            };
            let Some(mut stream) = stream else { return };
            backoff = self.config.reconnect_backoff_ms;
            loop {
                stream = tokio::select! {
                    _ = self.run_connection(stream, Arc::clone(&dispatch)) => break,
                    newer = accepted.recv() => match newer {
                        Some(s) => s,
                        None => return,
                    },
                };
            }
        }
    }

    /// Connects to the lower-id peer only to ask it to dial back.
    async fn ask_to_dial(&self) {
        let Some(addr) = self.addr.lock().expect("addr lock").clone() else { return };
        let ask = async {
            let mut s = stream::connect(self.tls.as_ref(), &addr, self.config.stall_timeout()).await?;
            frame::write_dial_back(&mut s, self.local, &self.advertised).await?;
            s.shutdown().await
        };
        match tokio::time::timeout(self.config.connection_setup_timeout(), ask).await {
            Ok(Ok(())) => tracing::debug!(local = self.local, remote = self.remote, "asked {addr} to dial back"),
            Ok(Err(e)) => tracing::debug!(local = self.local, remote = self.remote, "asking {addr} to dial back: {e}"),
            Err(_) => tracing::debug!(local = self.local, remote = self.remote, "asking {addr} to dial back: timed out"),
        }
    }
}

/// Takes one envelope's worth of messages, lingering ones first.
fn take_batch(s: &mut State, max_bytes: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for queue in [&mut s.lingering, &mut s.urgent] {
        while let Some(m) = queue.front() {
            if !out.is_empty() && bytes + m.len() > max_bytes {
                break;
            }
            bytes += m.len();
            out.extend(queue.pop_front());
        }
    }
    if s.lingering.is_empty() {
        s.oldest_lingering = None;
    }
    debug_assert!(!out.is_empty());
    out
}

/// Takes a request out of `pending` when its caller stops waiting before the
/// answer (a timeout, or the call's future dropped), so that `pending` holds
/// only requests someone waits for: the stall watchdog counts on it.
struct Forget<'a> {
    peer: &'a Peer,
    request_id: u64,
    armed: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.peer.lock().pending.remove(&self.request_id);
        }
    }
}

/// Fails what waits on a connection when it ends, however it ends.
struct Disconnect<'a> {
    peer: &'a Peer,
    generation: u64,
}

impl Drop for Disconnect<'_> {
    fn drop(&mut self) {
        let mut s = self.peer.lock();
        if s.generation == self.generation {
            s.connected = false;
            s.owed_since = None;
            // Dropping the reply senders wakes every caller with "connection lost".
            s.pending.clear();
            s.lingering.clear();
            s.urgent.clear();
            s.oldest_lingering = None;
        }
        drop(s);
        self.peer.wake.notify_one();
    }
}
