//! Two transports on real TCP (127.0.0.1) through a proxy that can turn
//! into a black hole: a stalled link is replaced soon after it heals, and
//! a slow busy link or an idle one is never replaced. In the crate, so that the test
//! drives peers directly with heartbeat RPCs (to a group neither node
//! hosts: answered at once with a failure, no raft needed).
//!
//! The black hole stands for a link that drops packets without a reset:
//! the connections it holds stop moving, and stay stopped after the heal,
//! as TCP's retransmission backoff would keep them (for seconds; here for
//! good, until the test thaws them to show their late bytes do no harm).
//! Connections opened while it lasts are accepted and never answered, like
//! a SYN into the void; connections opened after the heal go through.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::frame::{Rpc, encode_body};
use super::peer::{CallError, PeerStats, Urgency};
use super::{Dispatch, Transport};
use crate::config::RaftConfig;
use crate::registry::{FjordRaft, GroupId};
use crate::types::{TypeConfig, Vote};

/// Hosts nothing: every group request is answered "not hosted here".
struct NoGroups;

impl Dispatch for NoGroups {
    fn raft(&self, _: &GroupId) -> Option<FjordRaft> {
        None
    }
}

const GROUP: GroupId = GroupId { topic_id: [3; 16], partition: 0 };

// ---------------------------------------------------------------------------
// The proxy: a listener in front of each node.

struct BlackHole {
    state: Arc<HoleState>,
    fronts: BTreeMap<u64, SocketAddr>,
    listeners: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct HoleState {
    /// Bytes per second each way per connection; unlimited if `None`.
    rate: Option<u64>,
    backs: Mutex<BTreeMap<u64, SocketAddr>>,
    /// Whether new connections go into the void; under the `pipes` lock.
    stalled: AtomicBool,
    /// Each forwarded connection's switch (`true`: frozen).
    pipes: Mutex<Vec<watch::Sender<bool>>>,
    /// Connections frozen by a stall, until [`BlackHole::thaw`].
    stale: Mutex<Vec<watch::Sender<bool>>>,
    /// Connections accepted during a stall: held open, never answered.
    void: Mutex<Vec<TcpStream>>,
}

impl BlackHole {
    async fn start(ids: &[u64], rate: Option<u64>) -> Self {
        let state = Arc::new(HoleState { rate, ..HoleState::default() });
        let (mut fronts, mut listeners) = (BTreeMap::new(), Vec::new());
        for &id in ids {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            fronts.insert(id, l.local_addr().unwrap());
            listeners.push(tokio::spawn(accept(Arc::clone(&state), id, l)));
        }
        Self { state, fronts, listeners }
    }

    /// Every connection stops moving; new ones go into the void.
    fn stall(&self) {
        let mut pipes = self.state.pipes.lock().unwrap();
        self.state.stalled.store(true, Ordering::SeqCst);
        for p in pipes.drain(..) {
            p.send_replace(true);
            self.state.stale.lock().unwrap().push(p);
        }
    }

    /// New connections go through again; the frozen ones stay frozen.
    fn heal(&self) {
        let _pipes = self.state.pipes.lock().unwrap();
        self.state.stalled.store(false, Ordering::SeqCst);
    }

    /// The connections frozen by the stall move again, late.
    fn thaw(&self) {
        for p in self.state.stale.lock().unwrap().drain(..) {
            p.send_replace(false);
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
    }
}

async fn accept(state: Arc<HoleState>, dest: u64, listener: TcpListener) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        if state.stalled.load(Ordering::SeqCst) {
            state.void.lock().unwrap().push(inbound);
            continue;
        }
        let back = state.backs.lock().unwrap()[&dest];
        let Ok(outbound) = TcpStream::connect(back).await else { continue };
        let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
        let (switch, frozen) = watch::channel(false);
        let mut pipes = state.pipes.lock().unwrap();
        // Stalled while connecting: frozen from the start.
        switch.send_replace(state.stalled.load(Ordering::SeqCst));
        let ((ri, wi), (ro, wo)) = (inbound.into_split(), outbound.into_split());
        tokio::spawn(pump(ri, wo, frozen.clone(), state.rate));
        tokio::spawn(pump(ro, wi, frozen, state.rate));
        if *switch.borrow() {
            state.stale.lock().unwrap().push(switch);
        } else {
            pipes.push(switch);
        }
    }
}

/// Copies one way while not frozen, at most `rate` bytes per second; bytes
/// read just before a freeze are held until a thaw, as the sender's TCP
/// would hold them unacknowledged.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>, rate: Option<u64>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        if frozen.wait_for(|f| !f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|f| !f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(rate) = rate {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Two nodes, and heartbeats between them.

/// Node 1 dials, node 2 accepts, both through the proxy.
struct Pair {
    hole: BlackHole,
    nodes: [Transport; 2],
}

fn config(stall_timeout_ms: u64) -> RaftConfig {
    let mut c = RaftConfig::default();
    for (name, value) in [
        ("raft.heartbeat.interval.ms", "100"),
        ("raft.election.timeout.ms", "600"),
        ("raft.election.timeout.max.ms", "1200"),
        ("raft.transport.linger.ms", "5"),
        ("raft.reconnect.backoff.ms", "20"),
        ("raft.reconnect.backoff.max.ms", "200"),
        ("raft.connection.setup.timeout.ms", "2000"),
        ("raft.transport.stall.timeout.ms", &stall_timeout_ms.to_string()),
    ] {
        c.set(name, value).unwrap();
    }
    c.validate().unwrap();
    c
}

impl Pair {
    async fn start(config: RaftConfig, rate: Option<u64>) -> Self {
        let hole = BlackHole::start(&[1, 2], rate).await;
        let config = Arc::new(config);
        let mut nodes = Vec::new();
        for id in [1, 2] {
            let front = Some(hole.fronts[&id].to_string());
            let t =
                Transport::bind(id, "127.0.0.1:0".parse().unwrap(), front, Arc::clone(&config), Arc::new(NoGroups), None).await.unwrap();
            hole.state.backs.lock().unwrap().insert(id, t.local_addr());
            nodes.push(t);
        }
        let pair = Self { nodes: [nodes[0].clone(), nodes[1].clone()], hole };
        pair.nodes[0].set_address(2, &pair.hole.fronts[&2].to_string());
        pair.nodes[1].set_address(1, &pair.hole.fronts[&1].to_string());
        pair
    }

    fn stats(&self, from: u64) -> PeerStats {
        let to = 3 - from;
        self.nodes[(from - 1) as usize].stats().get(&to).copied().unwrap_or_default()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for t in &self.nodes {
            t.shutdown();
        }
    }
}

/// What a stream of heartbeats from one node to the other saw.
#[derive(Default)]
struct Beats {
    answered: AtomicU64,
    failed: AtomicU64,
    last_answered: Mutex<Option<Instant>>,
}

/// Sends a heartbeat every 50 ms (each waiting at most 200 ms, as openraft's
/// would) from `from` to the other node until aborted.
fn heartbeats(pair: &Pair, from: u64) -> (Arc<Beats>, JoinHandle<()>) {
    let to = 3 - from;
    let peer = pair.nodes[(from - 1) as usize].peer(to, None);
    let beats = Arc::new(Beats::default());
    let seen = Arc::clone(&beats);
    let body = encode_body(&openraft::raft::AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, from),
        prev_log_id: None,
        leader_commit: None,
        entries: Vec::new(),
    });
    let task = tokio::spawn(async move {
        loop {
            match peer.call(Rpc::Heartbeat, GROUP, &body, Urgency::Linger, Duration::from_millis(200)).await {
                // The answer to a group nobody hosts: the peer heard us.
                Err(CallError::Remote(..)) => {
                    seen.answered.fetch_add(1, Ordering::Relaxed);
                    *seen.last_answered.lock().unwrap() = Some(Instant::now());
                }
                _ => {
                    seen.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (beats, task)
}

/// Waits until `beats` got an answer after `since`; how long that took.
async fn answered_after(beats: &Beats, since: Instant, within: Duration) -> Duration {
    loop {
        if let Some(at) = *beats.last_answered.lock().unwrap()
            && at > since
        {
            return at - since;
        }
        assert!(since.elapsed() < within, "no heartbeat answered within {within:?} of {since:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// The tests.

/// Which nodes send heartbeats (and so are owed answers) in a case.
const SENDERS: [&[u64]; 3] = [&[1, 2], &[1], &[2]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_is_replaced_soon_after_it_heals() {
    const STALL_MS: u64 = 1000;
    for senders in SENDERS {
        let pair = Pair::start(config(STALL_MS), None).await;
        let load: Vec<_> = senders.iter().map(|&from| (from, heartbeats(&pair, from))).collect();
        for (_, (beats, _)) in &load {
            answered_after(beats, Instant::now(), Duration::from_secs(10)).await;
        }
        let before = [pair.stats(1), pair.stats(2)];
        assert_eq!((before[0].connections, before[1].connections), (1, 1), "{senders:?}: one connection");

        // The link goes silent for well past the stall timeout.
        pair.hole.stall();
        let stalled_at = Instant::now();
        for &from in senders {
            // Each node owed answers notices by itself.
            wait_until("a stall noticed", Duration::from_millis(STALL_MS * 5), || pair.stats(from).stalls > 0).await;
        }
        let noticed = stalled_at.elapsed();
        tokio::time::sleep(Duration::from_millis(STALL_MS * 5 / 2).saturating_sub(noticed)).await;
        let answered: Vec<u64> = load.iter().map(|(_, (b, _))| b.answered.load(Ordering::Relaxed)).collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for ((from, (b, _)), a) in load.iter().zip(&answered) {
            assert_eq!(b.answered.load(Ordering::Relaxed), *a, "{senders:?}: node {from}'s heartbeats crossed the black hole");
        }

        // Healed, the old connections stay stuck: only new ones can answer.
        pair.hole.heal();
        let healed_at = Instant::now();
        for (from, (beats, _)) in &load {
            let took = answered_after(beats, healed_at, Duration::from_secs(10)).await;
            println!("senders {senders:?}: stall noticed after {noticed:?}; node {from} answered {took:?} after the heal");
            // Bound: a dial made during the stall waits out the setup timeout (2 s), then the backoff.
            assert!(took < Duration::from_secs(5), "{senders:?}: node {from} answered only {took:?} after the heal");
        }
        let after = [pair.stats(1), pair.stats(2)];
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            assert!(a.connections > b.connections, "{senders:?}: node {} has a new connection: {b:?} -> {a:?}", i + 1);
        }
        assert!(after[0].stalls > 0, "{senders:?}: the dialler replaced its stalled connection: {:?}", after[0]);

        // The old connections' bytes arrive late, to sockets long closed: no harm.
        pair.hole.thaw();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let thawed_at = Instant::now();
        for (_, (beats, _)) in &load {
            answered_after(beats, thawed_at, Duration::from_secs(5)).await;
        }
        let last = [pair.stats(1), pair.stats(2)];
        assert_eq!((last[0].connections, last[1].connections), (after[0].connections, after[1].connections), "{senders:?}");
        for (_, (_, task)) in load {
            task.abort();
        }
    }
}

/// A link slow enough that one large message takes longer than the stall
/// timeout to cross, both ways, heartbeats queued behind: the bytes
/// trickling in are what keeps it alive. Then an idle spell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_busy_link_or_an_idle_one_is_never_replaced() {
    const RATE: u64 = 2 << 20;
    // The derived stall timeout (2 s with these timings), as brokers run it.
    let config = config(0);
    let stall = config.stall_timeout();
    let big = vec![7u8; (RATE * stall.as_secs() * 3 / 2) as usize];
    let pair = Pair::start(config, Some(RATE)).await;
    let load = [heartbeats(&pair, 1), heartbeats(&pair, 2)];
    // Control requests owe nothing (their answers may take long), but they
    // hold up the heartbeats queued behind them.
    let controls: Vec<(Arc<AtomicU64>, JoinHandle<()>)> = [1u64, 2]
        .into_iter()
        .map(|from| {
            let peer = pair.nodes[(from - 1) as usize].peer(3 - from, None);
            let (big, answered) = (big.clone(), Arc::new(AtomicU64::new(0)));
            let seen = Arc::clone(&answered);
            let task = tokio::spawn(async move {
                loop {
                    let r = peer.call(Rpc::Control, GroupId::METADATA, &big, Urgency::Now, Duration::from_secs(30)).await;
                    if matches!(r, Err(CallError::Remote(..))) {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            (answered, task)
        })
        .collect();
    tokio::time::sleep(stall * 4).await;
    for (from, (answered, task)) in [1, 2].into_iter().zip(controls) {
        task.abort();
        let s = pair.stats(from);
        println!("node {from}: {} large control requests answered; {s:?}", answered.load(Ordering::Relaxed));
        assert!(answered.load(Ordering::Relaxed) >= 1 && s.bytes_received >= big.len() as u64, "node {from}: the large messages crossed");
    }
    for (from, (beats, task)) in [1, 2].into_iter().zip(load) {
        task.abort();
        let (answered, failed) = (beats.answered.load(Ordering::Relaxed), beats.failed.load(Ordering::Relaxed));
        println!("node {from}: {answered} heartbeats answered, {failed} not (stuck behind large messages)");
        assert!(answered > 0, "node {from}'s heartbeats were answered");
    }
    // And then nothing at all for a while.
    tokio::time::sleep(stall * 2).await;
    for from in [1, 2] {
        let s = pair.stats(from);
        assert_eq!((s.connections, s.stalls), (1, 0), "node {from}: one connection all along: {s:?}");
    }
}
