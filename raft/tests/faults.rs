//! Fault tests on real TCP (127.0.0.1), three nodes in one process: a
//! stopped leader, a stopped follower that restarts (behind or beyond the
//! leader's purge point) and a leader cut off from its followers by a proxy.
//! After every fault a checker compares the replicas' logs entry by entry up
//! to the commit index (bytes, so offsets and terms too) and asserts dense
//! offsets and contiguous raft indexes.
//!
//! Faults are real: a stopped node is shut down and dropped (a restart is
//! `RaftNode::start` on the same data dir and port, then `create_group`); a
//! cut link is a TCP proxy that the test owns refusing and closing the
//! connections between two nodes. Every node is reached through its proxy:
//! the group's membership names the proxies' addresses, so that is where the
//! lower id dials, and each node advertises its proxy
//! (`RaftNode::start_advertised`), so a dial-back (the higher id asking the
//! lower to dial it) names the proxy too; the proxy checks that it does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord_raft::config::RaftConfig;
use fjord_raft::registry::{FjordRaft, Group};
use fjord_raft::transport::frame::{self, Handshake};
use fjord_raft::{GroupId, KafkaBatch, RaftNode};
use fjord_storage::LogConfig;
use fjord_storage::batch::{BatchHeader, uncompressed_batch};
use futures_util::StreamExt;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ServerState};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const GROUP: GroupId = GroupId { topic_id: [7; 16], partition: 3 };
/// How long any awaited condition may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// Short timings, so that an election takes about a second; fast redials, so
/// that a healed link is back within a fraction of one.
fn raft_config() -> RaftConfig {
    let mut c = RaftConfig::default();
    for (name, value) in [
        ("raft.heartbeat.interval.ms", "100"),
        ("raft.election.timeout.ms", "600"),
        ("raft.election.timeout.max.ms", "1200"),
        ("raft.transport.linger.ms", "5"),
        ("raft.reconnect.backoff.ms", "20"),
        ("raft.reconnect.backoff.max.ms", "200"),
        ("raft.connection.setup.timeout.ms", "2000"),
    ] {
        c.set(name, value).unwrap();
    }
    c
}

/// One segment holds everything written.
fn one_segment() -> LogConfig {
    LogConfig { segment_bytes: 64 << 20, preallocate_step_bytes: 1 << 20, retention_ms: None, ..Default::default() }
}

/// Small segments, so that a purge really deletes a prefix.
fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 64 << 10, preallocate_step_bytes: 64 << 10, retention_ms: None, ..Default::default() }
}

fn records(i: usize) -> i64 {
    1 + (i % 5) as i64
}

fn batch_bytes(i: usize) -> Vec<u8> {
    let timestamps: Vec<i64> = (0..records(i)).map(|r| 1_700_000_000_000 + i as i64 * 10 + r).collect();
    uncompressed_batch(&timestamps, 64 + i % 100)
}

fn batch(i: usize) -> KafkaBatch {
    KafkaBatch::new(Bytes::from(batch_bytes(i))).unwrap()
}

/// The fields the log patches on append: baseOffset (bytes 0..8) and
/// partitionLeaderEpoch (12..16). All else is stored as produced.
fn same_but_patched_fields(stored: &[u8], produced: &[u8]) -> bool {
    stored.len() == produced.len() && stored[8..12] == produced[8..12] && stored[16..] == produced[16..]
}

// ---------------------------------------------------------------------------
// The proxy: one listener in front of each node.

/// A TCP proxy in front of every node; see the module doc. A connection's
/// source is the node named by its first frame (hello or dial-back), its
/// destination the node behind the listener it came to.
struct Proxy {
    state: Arc<ProxyState>,
    listeners: Vec<JoinHandle<()>>,
}

struct ProxyState {
    /// The proxy's listener per node: what the membership names.
    fronts: BTreeMap<u64, SocketAddr>,
    /// The node's own listener per node.
    backs: Mutex<BTreeMap<u64, SocketAddr>>,
    /// Cut pairs, lower id first.
    cut: Mutex<BTreeSet<(u64, u64)>>,
    /// Forwarded connections by pair; taken with `cut` released.
    pipes: Mutex<Vec<Pipe>>,
    /// Connections refused because their pair was cut.
    refused: AtomicU64,
}

/// A forwarded connection: its pair (lower id first) and the task copying both ways.
type Pipe = ((u64, u64), JoinHandle<()>);

fn pair(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

impl ProxyState {
    fn is_cut(&self, a: u64, b: u64) -> bool {
        self.cut.lock().unwrap().contains(&pair(a, b))
    }
}

impl Proxy {
    async fn start(ids: &[u64]) -> Self {
        let mut listeners = Vec::new();
        let mut fronts = BTreeMap::new();
        for &id in ids {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            fronts.insert(id, l.local_addr().unwrap());
            listeners.push((id, l));
        }
        let state = Arc::new(ProxyState {
            fronts,
            backs: Mutex::default(),
            cut: Mutex::default(),
            pipes: Mutex::default(),
            refused: AtomicU64::new(0),
        });
        let listeners = listeners.into_iter().map(|(id, l)| tokio::spawn(accept(Arc::clone(&state), id, l))).collect();
        Self { state, listeners }
    }

    fn front(&self, id: u64) -> SocketAddr {
        self.state.fronts[&id]
    }

    fn set_back(&self, id: u64, addr: SocketAddr) {
        self.state.backs.lock().unwrap().insert(id, addr);
    }

    /// Refuses new connections between `a` and `b` and closes theirs.
    fn cut(&self, a: u64, b: u64) {
        self.state.cut.lock().unwrap().insert(pair(a, b));
        let mut pipes = self.state.pipes.lock().unwrap();
        pipes.retain(|(p, task)| {
            let doomed = *p == pair(a, b);
            if doomed {
                task.abort();
            }
            !doomed && !task.is_finished()
        });
    }

    fn heal(&self, a: u64, b: u64) {
        self.state.cut.lock().unwrap().remove(&pair(a, b));
    }

    /// Connections between `a` and `b` being forwarded now.
    fn pipes(&self, a: u64, b: u64) -> usize {
        self.state.pipes.lock().unwrap().iter().filter(|(p, task)| *p == pair(a, b) && !task.is_finished()).count()
    }

    fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        for (_, p) in self.state.pipes.lock().unwrap().drain(..) {
            p.abort();
        }
    }
}

async fn accept(state: Arc<ProxyState>, dest: u64, listener: TcpListener) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(forward(Arc::clone(&state), dest, stream));
        }
    }
}

/// Reads the first frame to learn the source, refuses a cut pair, and
/// otherwise connects to the node and pipes both ways.
async fn forward(state: Arc<ProxyState>, dest: u64, mut inbound: TcpStream) {
    let Ok(Ok(handshake)) = tokio::time::timeout(Duration::from_secs(5), frame::read_handshake(&mut inbound)).await else { return };
    let src = match &handshake {
        Handshake::Hello { node_id } | Handshake::DialBack { node_id, .. } => *node_id,
    };
    if state.is_cut(src, dest) {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let back = state.backs.lock().unwrap()[&dest];
    let Ok(mut outbound) = TcpStream::connect(back).await else { return };
    let sent = match handshake {
        Handshake::Hello { node_id } => frame::write_hello(&mut outbound, node_id).await,
        // The sender advertises its proxy, so it is dialled back through it.
        Handshake::DialBack { node_id, addr: address } => {
            let front = state.fronts.get(&node_id).map_or_else(String::new, |a| a.to_string());
            assert_eq!(address, front, "node {node_id} must advertise its proxy");
            frame::write_dial_back(&mut outbound, node_id, &address).await
        }
    };
    if sent.is_err() {
        return;
    }
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    // Registered under the lock `cut` takes after marking the pair, so a cut
    // either stops this connection here or finds its pipe.
    let mut pipes = state.pipes.lock().unwrap();
    if state.is_cut(src, dest) {
        state.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let task = tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    });
    pipes.push((pair(src, dest), task));
}

// ---------------------------------------------------------------------------
// The cluster: nodes that stop and restart, one group, through the proxy.

struct Cluster {
    dir: tempfile::TempDir,
    config: RaftConfig,
    log_config: LogConfig,
    proxy: Proxy,
    /// Each node's listener, kept across restarts; index = id - 1.
    addrs: Vec<SocketAddr>,
    nodes: Vec<Option<RaftNode>>,
}

/// One acknowledged write.
#[derive(Debug, Clone, Copy)]
struct Ack {
    /// Which batch (`batch(i)`).
    i: usize,
    index: u64,
    term: u64,
    base_offset: i64,
    next_offset: i64,
}

impl Cluster {
    /// Starts `n` nodes and the group on each, initialized on node 1 with
    /// the proxies as the members' addresses.
    async fn start(n: u64, log_config: LogConfig) -> Self {
        let ids: Vec<u64> = (1..=n).collect();
        let dir = tempfile::tempdir().unwrap();
        let config = raft_config();
        let proxy = Proxy::start(&ids).await;
        let (mut addrs, mut nodes) = (Vec::new(), Vec::new());
        for &id in &ids {
            let advertised = Some(proxy.front(id).to_string());
            let listen = "127.0.0.1:0".parse().unwrap();
            let node =
                RaftNode::start_advertised(id, listen, advertised, dir.path().join(format!("node-{id}")), config.clone()).await.unwrap();
            proxy.set_back(id, node.addr());
            addrs.push(node.addr());
            nodes.push(Some(node));
        }
        let c = Self { dir, config, log_config, proxy, addrs, nodes };
        for &id in &ids {
            c.node(id).create_group(GROUP, c.log_config.clone()).await.unwrap();
        }
        let members: BTreeMap<u64, BasicNode> = ids.iter().map(|&id| (id, BasicNode::new(c.proxy.front(id)))).collect();
        let raft = c.raft(1);
        raft.initialize(members).await.unwrap();
        raft.trigger().elect(false).await.unwrap();
        c
    }

    fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn node(&self, id: u64) -> &RaftNode {
        self.nodes[(id - 1) as usize].as_ref().unwrap_or_else(|| panic!("node {id} is stopped"))
    }

    fn group(&self, id: u64) -> Arc<Group> {
        self.node(id).group(GROUP).unwrap()
    }

    fn raft(&self, id: u64) -> FjordRaft {
        self.group(id).raft().clone()
    }

    fn live(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64).filter(|id| self.nodes[(*id - 1) as usize].is_some()).collect()
    }

    /// Shuts node `id` down and drops it (and with it its groups and logs).
    async fn stop(&mut self, id: u64) {
        let node = self.nodes[(id - 1) as usize].take().unwrap();
        node.shutdown().await;
        drop(node);
    }

    /// Starts node `id` again on its data dir and port, and its group.
    async fn restart(&mut self, id: u64) {
        let addr = self.addrs[(id - 1) as usize];
        let started = Instant::now();
        let node = loop {
            // The old listener closes when its aborted task is dropped: soon, not at once.
            let advertised = Some(self.proxy.front(id).to_string());
            match RaftNode::start_advertised(id, addr, advertised, self.data_dir(id), self.config.clone()).await {
                Ok(node) => break node,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("restarting node {id}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("restarting node {id}: {e}"),
            }
        };
        node.create_group(GROUP, self.log_config.clone()).await.unwrap();
        self.nodes[(id - 1) as usize] = Some(node);
    }

    /// The one node among `among` that leads and has heard from a quorum
    /// (before that, writes are refused).
    async fn writable_leader(&self, among: &[u64]) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            for &id in among {
                let m = self.raft(id).metrics().borrow_watched().clone();
                if m.state == ServerState::Leader && m.current_leader == Some(id) && m.last_quorum_acked.is_some() {
                    return id;
                }
            }
            assert!(Instant::now() < deadline, "no writable leader among {among:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn committed(&self, id: u64) -> Option<u64> {
        self.raft(id).metrics().borrow_watched().local_committed.map(|l| l.index())
    }

    /// Waits until `id` has committed and applied through `index`.
    async fn wait_applied(&self, id: u64, index: u64) {
        let raft = self.raft(id);
        let w = raft.wait(Some(WAIT));
        w.metrics(|m| m.local_committed.is_some_and(|c| c.index() >= index), "committed").await.unwrap();
        raft.wait(Some(WAIT)).applied_index_at_least(Some(index), "applied").await.unwrap();
    }

    fn high_watermark(&self, id: u64) -> i64 {
        *self.group(id).high_watermark().borrow()
    }

    fn log_end_offset(&self, id: u64) -> i64 {
        self.group(id).with_log(|log| log.log_end_offset())
    }

    /// The checker: the live replicas `ids`, each up to its own commit index,
    /// entry by entry. See [`check_logs`].
    fn check(&self, ids: &[u64]) -> Checked {
        check_logs(&ids.iter().map(|&id| self.read_replica(id)).collect::<Vec<_>>())
    }

    fn read_replica(&self, id: u64) -> ReplicaLog {
        let g = self.group(id);
        // The commit index first: the log below it never changes after.
        let committed = g.raft().metrics().borrow_watched().local_committed.map_or(0, |l| l.index());
        g.with_log(|log| {
            let first = log.first_raft_index().unwrap();
            let to = (committed + 1).min(log.next_raft_index());
            let entries = if log.is_empty() || to <= first {
                Vec::new()
            } else {
                log.entries(first, to, usize::MAX).unwrap().into_iter().map(|e| (e.raft_index, e.bytes)).collect()
            };
            ReplicaLog { id, committed, first, log_start_offset: log.log_start_offset(), entries }
        })
    }
}

/// Writes `batch(i)` for every `i` through `raft`, 64 in flight; each
/// write's ack, or why it failed (or that it had no answer in time).
async fn write_results(raft: &FjordRaft, range: Range<usize>) -> Vec<Result<Ack, String>> {
    let writes = futures_util::stream::iter(range).map(|i| {
        let raft = raft.clone();
        async move {
            match tokio::time::timeout(WAIT, raft.client_write(batch(i))).await {
                Ok(Ok(r)) => {
                    let term = r.log_id.committed_leader_id().term;
                    Ok(Ack { i, index: r.log_id.index(), term, base_offset: r.data.base_offset, next_offset: r.data.next_offset })
                }
                Ok(Err(e)) => Err(format!("write of batch {i}: {e}")),
                Err(_) => Err(format!("write of batch {i}: no answer in {WAIT:?}")),
            }
        }
    });
    writes.buffer_unordered(64).collect().await
}

/// As [`write_results`], but every write must be acknowledged; the acks
/// sorted by raft index.
async fn write_all(raft: &FjordRaft, range: Range<usize>) -> Vec<Ack> {
    let mut acks: Vec<Ack> = write_results(raft, range).await.into_iter().map(|r| r.unwrap_or_else(|e| panic!("{e}"))).collect();
    acks.sort_by_key(|a| a.index);
    acks
}

/// Acks in raft order take dense offsets: each starts where the one before ended.
fn assert_acks_dense(acks: &[Ack], from_offset: i64) {
    let mut next = from_offset;
    let mut indexes = BTreeSet::new();
    for a in acks {
        assert!(indexes.insert(a.index), "raft index {} acknowledged twice", a.index);
        assert_eq!(a.base_offset, next, "batch {} at raft index {} got offset {}", a.i, a.index, a.base_offset);
        assert_eq!(a.next_offset, a.base_offset + records(a.i));
        next = a.next_offset;
    }
}

// ---------------------------------------------------------------------------
// The checker.

/// What one replica's log holds from its first entry through its commit index.
struct ReplicaLog {
    id: u64,
    committed: u64,
    first: u64,
    log_start_offset: i64,
    entries: Vec<(u64, Bytes)>,
}

/// What [`check_logs`] compared.
#[derive(Debug)]
struct Checked {
    /// Raft indexes compared across all replicas: `from..=to`.
    from: u64,
    to: u64,
}

/// Per replica: raft indexes contiguous from the log's first through its
/// commit index, offsets dense (each batch starts where the one before
/// ended; raft's own entries take none), terms never going back. Across
/// replicas: byte-identical entries (offsets and terms included) over the
/// range every replica holds, up to the least commit index.
fn check_logs(replicas: &[ReplicaLog]) -> Checked {
    assert!(!replicas.is_empty());
    for r in replicas {
        for (k, (index, _)) in r.entries.iter().enumerate() {
            assert_eq!(*index, r.first + k as u64, "node {}: raft indexes are not contiguous", r.id);
        }
        if r.committed >= r.first {
            // A commit index below the log's first lies inside an installed snapshot.
            assert_eq!(r.entries.last().map(|e| e.0), Some(r.committed), "node {}: the log ends before its commit index", r.id);
        }
        let (mut next, mut epoch) = (None, i32::MIN);
        for (index, bytes) in &r.entries {
            let h = BatchHeader::parse(bytes).unwrap_or_else(|e| panic!("node {}: entry {index} is not a batch: {e}", r.id));
            if let Some(n) = next {
                assert_eq!(h.base_offset, n, "node {}: entry {index} breaks dense offsets", r.id);
            } else if *index == r.first && r.first > 0 {
                // A log that starts after a snapshot or purge starts at its log start offset or above.
                assert!(h.base_offset >= r.log_start_offset || h.offset_count() == 0, "node {}: first entry below the log start", r.id);
            }
            next = Some(h.base_offset + h.offset_count());
            assert!(h.leader_epoch >= epoch, "node {}: entry {index} has term {} after term {epoch}", r.id, h.leader_epoch);
            epoch = h.leader_epoch;
        }
    }
    let from = replicas.iter().map(|r| r.first).max().unwrap();
    let to = replicas.iter().map(|r| r.committed).min().unwrap();
    fn at(r: &ReplicaLog, index: u64) -> &Bytes {
        &r.entries[(index - r.first) as usize].1
    }
    for index in from..=to {
        let reference = at(&replicas[0], index);
        for r in &replicas[1..] {
            assert_eq!(at(r, index), reference, "raft index {index}: node {} and node {} differ", r.id, replicas[0].id);
        }
    }
    Checked { from, to }
}

/// Every acknowledged batch is in the log of `id` where its ack said, with
/// the offset and term the ack said, and otherwise as produced.
fn assert_acks_held(c: &Cluster, id: u64, acks: &[Ack]) {
    let (Some(first), Some(last)) = (acks.first().map(|a| a.index), acks.last().map(|a| a.index)) else { return };
    let held: HashMap<u64, Bytes> = c.group(id).with_log(|log| {
        assert!(log.first_raft_index().unwrap() <= first, "node {id}: acknowledged entries were deleted");
        log.entries(first, last + 1, usize::MAX).unwrap().into_iter().map(|e| (e.raft_index, e.bytes)).collect()
    });
    for a in acks {
        let bytes = held.get(&a.index).unwrap_or_else(|| panic!("node {id}: acknowledged raft index {} is missing", a.index));
        let h = BatchHeader::parse(bytes).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch as u64), (a.base_offset, a.term), "node {id}: raft index {}", a.index);
        assert!(same_but_patched_fields(bytes, &batch_bytes(a.i)), "node {id}: raft index {} is not batch {}", a.index, a.i);
    }
}

async fn shutdown(c: Cluster) {
    for id in c.live() {
        c.node(id).shutdown().await;
    }
}

// ---------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_is_replaced_and_loses_no_acknowledged_batch() {
    const BATCHES: usize = 10_000;
    let started = Instant::now();
    let mut c = Cluster::start(3, one_segment()).await;
    let old = c.writable_leader(&[1, 2, 3]).await;

    let acks = write_all(&c.raft(old), 0..BATCHES).await;
    assert_eq!(acks.len(), BATCHES);
    assert_acks_dense(&acks, 0);
    let total: i64 = (0..BATCHES).map(records).sum();
    assert_eq!(acks.last().unwrap().next_offset, total);
    println!("{BATCHES} batches acknowledged by node {old} after {:?}", started.elapsed());

    // Stop the leader with another 1,000 writes in flight: those acknowledged count too.
    let in_flight = {
        let raft = c.raft(old);
        tokio::spawn(async move { write_results(&raft, BATCHES..BATCHES + 1000).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stopping = Instant::now();
    c.stop(old).await;
    println!("node {old} shut down in {:?}", stopping.elapsed());
    let (mut late, failed): (Vec<_>, Vec<_>) = in_flight.await.unwrap().into_iter().partition(Result::is_ok);
    let mut late: Vec<Ack> = late.drain(..).map(Result::unwrap).collect();
    late.sort_by_key(|a| a.index);
    println!("node {old} stopped with writes in flight: {} acknowledged, {} failed ({:?})", late.len(), failed.len(), failed.first());
    let survivors: Vec<u64> = c.live();
    let new = c.writable_leader(&survivors).await;
    assert_ne!(new, old);
    println!("node {old} stopped; node {new} leads after {:?}", started.elapsed());

    // Writes continue on the new leader; once it commits them, both survivors hold everything before.
    let more = write_all(&c.raft(new), BATCHES + 1000..BATCHES + 1500).await;
    assert!(more[0].term > acks.last().unwrap().term, "the new leader has a newer term");
    assert!(more[0].base_offset >= late.last().map_or(total, |a| a.next_offset), "the new leader writes after every acknowledged batch");
    for &id in &survivors {
        c.wait_applied(id, more.last().unwrap().index).await;
    }
    for &id in &survivors {
        assert_acks_held(&c, id, &acks);
        assert_acks_held(&c, id, &late);
        assert_acks_held(&c, id, &more);
        assert_eq!(c.high_watermark(id), more.last().unwrap().next_offset);
        assert_eq!(c.log_end_offset(id), more.last().unwrap().next_offset);
    }
    let checked = c.check(&survivors);
    assert!(checked.from <= acks[0].index && checked.to >= more.last().unwrap().index, "{checked:?}");
    println!("survivors {survivors:?} identical over raft indexes {checked:?}; {:?} in all", started.elapsed());
    shutdown(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_follower_restarts_and_catches_up() {
    let mut c = Cluster::start(3, one_segment()).await;
    let leader = c.writable_leader(&[1, 2, 3]).await;
    let follower = c.live().into_iter().find(|id| *id != leader).unwrap();

    let before = write_all(&c.raft(leader), 0..500).await;
    c.wait_applied(follower, before.last().unwrap().index).await;
    c.stop(follower).await;
    let during = write_all(&c.raft(leader), 500..2500).await;
    assert_acks_dense(&during, before.last().unwrap().next_offset);

    c.restart(follower).await;
    let after = write_all(&c.raft(leader), 2500..2600).await;
    let last = after.last().unwrap();
    for id in c.live() {
        c.wait_applied(id, last.index).await;
        assert_eq!(c.high_watermark(id), last.next_offset, "node {id}");
        assert_eq!(c.log_end_offset(id), last.next_offset, "node {id}");
    }
    assert_acks_held(&c, follower, &during);
    let checked = c.check(&c.live());
    assert!(checked.from <= before[0].index && checked.to >= last.index, "{checked:?}");
    assert_eq!(c.committed(follower), c.committed(leader));
    shutdown(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_purge_point_installs_a_snapshot_and_replicates_on() {
    let mut c = Cluster::start(3, small_segments()).await;
    let leader = c.writable_leader(&[1, 2, 3]).await;
    let follower = c.live().into_iter().find(|id| *id != leader).unwrap();

    let before = write_all(&c.raft(leader), 0..300).await;
    c.wait_applied(follower, before.last().unwrap().index).await;
    let follower_next = c.group(follower).with_log(|log| log.next_raft_index());
    c.stop(follower).await;
    let during = write_all(&c.raft(leader), 300..3300).await;
    let last = *during.last().unwrap();

    // Snapshot and purge on the leader, through everything written.
    let raft = c.raft(leader);
    raft.trigger().snapshot().await.unwrap();
    let m = raft.wait(Some(WAIT)).metrics(|m| m.snapshot.is_some_and(|s| s.index() >= last.index), "snapshot").await.unwrap();
    let snapshot = m.snapshot.unwrap();
    raft.trigger().purge_log(snapshot.index()).await.unwrap();
    raft.wait(Some(WAIT)).metrics(|m| m.purged.is_some_and(|p| p.index() >= snapshot.index()), "purged").await.unwrap();
    let (leader_first, leader_start) = c.group(leader).with_log(|log| (log.first_raft_index().unwrap(), log.log_start_offset()));
    assert!(
        leader_first > follower_next,
        "the follower's missing prefix ({follower_next}..) is gone from the leader (first {leader_first})"
    );
    // Everything through the snapshot was written by us or is raft's own (no offsets).
    let snapshot_next_offset = during.iter().filter(|a| a.index <= snapshot.index()).map(|a| a.next_offset).max().unwrap();
    println!(
        "leader {leader} snapshot {snapshot}, log from raft index {leader_first} (offset {leader_start}); follower {follower} stopped at {follower_next}"
    );

    c.restart(follower).await;
    let f = c.raft(follower);
    f.wait(Some(WAIT)).metrics(|m| m.snapshot.is_some_and(|s| s.index() >= snapshot.index()), "snapshot installed").await.unwrap();
    c.wait_applied(follower, last.index).await;
    let (first, start) = c.group(follower).with_log(|log| (log.first_raft_index().unwrap(), log.log_start_offset()));
    assert_eq!((first, start), (snapshot.index() + 1, snapshot_next_offset), "the follower's log starts right after the snapshot");

    // And it replicates on.
    let after = write_all(&c.raft(leader), 3300..3800).await;
    assert_acks_dense(&after, last.next_offset);
    let end = after.last().unwrap();
    for id in c.live() {
        c.wait_applied(id, end.index).await;
        assert_eq!(c.high_watermark(id), end.next_offset, "node {id}");
        assert_eq!(c.log_end_offset(id), end.next_offset, "node {id}");
    }
    assert_acks_held(&c, follower, &after);
    let checked = c.check(&c.live());
    assert!(checked.from <= first && checked.to >= end.index, "{checked:?}");
    shutdown(c).await;
}

/// openraft's default would purge all but the last 1,000 entries after each
/// snapshot; a purge deletes Kafka data, which only retention may do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_delete_no_data() {
    let c = Cluster::start(1, small_segments()).await;
    let raft = c.raft(c.writable_leader(&[1]).await);
    let acks = write_all(&raft, 0..6000).await;
    let last = acks.last().unwrap();
    raft.trigger().snapshot().await.unwrap();
    raft.wait(Some(WAIT)).metrics(|m| m.snapshot.is_some_and(|s| s.index() >= last.index), "snapshot").await.unwrap();
    // Give a purge that should not come the time it would take.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (start, segments) = c.group(1).with_log(|log| (log.log_start_offset(), log.segment_count()));
    assert!(segments > 10, "small segments rolled: {segments}");
    assert_eq!(start, 0, "nothing was deleted");
    assert!(raft.metrics().borrow_watched().purged.is_none());
    assert_acks_held(&c, 1, &acks);
    shutdown(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_its_tail_is_replaced_after_healing() {
    let c = Cluster::start(3, one_segment()).await;
    let old = c.writable_leader(&[1, 2, 3]).await;
    let majority: Vec<u64> = c.live().into_iter().filter(|id| *id != old).collect();
    let before = write_all(&c.raft(old), 0..500).await;
    for id in c.live() {
        c.wait_applied(id, before.last().unwrap().index).await;
    }
    c.check(&c.live());
    let (old_hw, old_committed) = (c.high_watermark(old), c.committed(old).unwrap());

    // Cut the leader off from both followers, then write to it.
    let refused = c.proxy.refused();
    for &f in &majority {
        assert!(c.proxy.pipes(old, f) >= 1, "node {old} and node {f} talk through the proxy");
        c.proxy.cut(old, f);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let old_raft = c.raft(old);
    let doomed: Vec<JoinHandle<_>> = (500..520)
        .map(|i| {
            let raft = old_raft.clone();
            tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(20), raft.client_write(batch(i))).await })
        })
        .collect();
    let m = old_raft.wait(Some(WAIT)).metrics(|m| m.last_log_index >= Some(old_committed + 20), "the tail appended").await.unwrap();
    let tail = (old_committed + 1)..=m.last_log_index.unwrap();
    let old_term = m.current_term;

    // The majority elects a leader and commits.
    let new = c.writable_leader(&majority).await;
    let during = write_all(&c.raft(new), 1000..1300).await;
    assert!(during[0].term > old_term);
    assert_acks_dense(&during, old_hw);
    for &id in &majority {
        c.wait_applied(id, during.last().unwrap().index).await;
    }
    // Meanwhile the old leader committed nothing.
    assert!(doomed.iter().all(|d| !d.is_finished()), "a write to the cut-off leader returned");
    assert_eq!((c.high_watermark(old), c.committed(old)), (old_hw, Some(old_committed)), "the minority moved its commit");
    let stale: Vec<(u64, i32)> = c
        .group(old)
        .with_log(|log| log.entries(*tail.start(), *tail.end() + 1, usize::MAX).unwrap())
        .iter()
        .map(|e| (e.raft_index, BatchHeader::parse(&e.bytes).unwrap().leader_epoch))
        .collect();
    assert_eq!(stale.len() as u64, tail.end() - tail.start() + 1);
    assert!(c.proxy.refused() > refused, "the nodes tried to reach each other across the cut");
    println!("old leader {old} holds an uncommitted tail {tail:?} of term {old_term}; node {new} leads the majority");

    // Heal: the old leader follows, its tail is truncated and replaced.
    for &f in &majority {
        c.proxy.heal(old, f);
    }
    let last = during.last().unwrap();
    c.wait_applied(old, last.index).await;
    assert_eq!(c.high_watermark(old), last.next_offset);
    for (k, d) in doomed.into_iter().enumerate() {
        let r = d.await.unwrap();
        assert!(!matches!(r, Ok(Ok(_))), "a write to the deposed leader was acknowledged: {r:?}");
        if k == 0 {
            println!("a write to the deposed leader ended with {r:?}");
        }
    }
    let replaced: Vec<i32> = c.group(old).with_log(|log| {
        log.entries(*tail.start(), *tail.end() + 1, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| BatchHeader::parse(&e.bytes).unwrap().leader_epoch)
            .collect()
    });
    assert!(replaced.iter().all(|e| *e as u64 > old_term), "the stale tail {stale:?} was replaced by the new term's entries: {replaced:?}");
    assert_acks_held(&c, old, &during);
    let checked = c.check(&c.live());
    assert!(checked.from <= before[0].index && checked.to >= *tail.end(), "{checked:?}");
    shutdown(c).await;
}
