//! The raft transport on real TCP (127.0.0.1, ephemeral ports), several
//! nodes in one process: replication converges byte for byte; idle groups
//! cost envelopes per node pair, not per group; a malformed frame closes
//! only its own connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord_raft::config::RaftConfig;
use fjord_raft::registry::{FjordRaft, Group};
use fjord_raft::transport::{PeerStats, frame};
use fjord_raft::{GroupId, KafkaBatch, RaftNode};
use fjord_storage::LogConfig;
use fjord_storage::batch::{BatchHeader, uncompressed_batch};
use futures_util::StreamExt;
use openraft::async_runtime::watch::WatchReceiver;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn log_config() -> LogConfig {
    // Small preallocation: hundreds of groups share the test machine's disk.
    LogConfig { segment_bytes: 1 << 20, preallocate_step_bytes: 64 << 10, retention_ms: None, ..Default::default() }
}

async fn start(n: u64, config: &RaftConfig, dir: &std::path::Path) -> Vec<RaftNode> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        let node = RaftNode::start(id, "127.0.0.1:0".parse().unwrap(), dir.join(format!("node-{id}")), config.clone()).await.unwrap();
        nodes.push(node);
    }
    nodes
}

/// Creates `group` on every node and initializes it on `nodes[first]`.
async fn create_everywhere(nodes: &[RaftNode], group: GroupId) -> Vec<Arc<Group>> {
    create_everywhere_with(nodes, group, log_config()).await
}

async fn create_everywhere_with(nodes: &[RaftNode], group: GroupId, config: LogConfig) -> Vec<Arc<Group>> {
    let mut groups = Vec::new();
    for n in nodes {
        groups.push(n.create_group(group, config.clone()).await.unwrap());
    }
    groups
}

async fn initialize(nodes: &[RaftNode], on: usize, group: GroupId) {
    let members: BTreeMap<u64, openraft::BasicNode> = nodes.iter().map(|n| (n.id(), n.node())).collect();
    let raft = nodes[on].group(group).unwrap().raft().clone();
    raft.initialize(members).await.unwrap();
    // Stand at once rather than after a whole election timeout.
    raft.trigger().elect(false).await.unwrap();
}

/// The leader of `group`, once a quorum has acknowledged it (its first
/// entry is applied): before that its lease is not valid and writes are refused.
async fn writable_leader(nodes: &[RaftNode], group: GroupId) -> FjordRaft {
    let any = nodes[0].group(group).unwrap().raft().clone();
    let m = any.wait(Some(Duration::from_secs(20))).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
    let leader = nodes.iter().find(|n| Some(n.id()) == m.current_leader).unwrap();
    let raft = leader.group(group).unwrap().raft().clone();
    raft.wait(Some(Duration::from_secs(20))).metrics(|m| m.last_quorum_acked.is_some(), "quorum acked").await.unwrap();
    raft
}

/// Short timings so elections and failures resolve in test time.
fn fast_config() -> RaftConfig {
    RaftConfig { heartbeat_interval_ms: 100, election_timeout_ms: 500, election_timeout_max_ms: 1000, linger_ms: 5, ..Default::default() }
}

fn batch(i: usize) -> KafkaBatch {
    let records = 1 + i % 5;
    let timestamps: Vec<i64> = (0..records as i64).map(|r| 1_700_000_000_000 + i as i64 * 10 + r).collect();
    KafkaBatch::new(Bytes::from(uncompressed_batch(&timestamps, 64 + i % 100))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_converge_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_config();
    let nodes = start(3, &config, dir.path()).await;
    let group = GroupId::new([9; 16], 0);
    let groups = create_everywhere(&nodes, group).await;
    initialize(&nodes, 0, group).await;

    let raft = writable_leader(&nodes, group).await;
    let leader = *raft.node_id();

    const BATCHES: usize = 1000;
    let started = Instant::now();
    let writes = futures_util::stream::iter(0..BATCHES).map(|i| {
        let raft = raft.clone();
        async move { raft.client_write(batch(i)).await.map(|r| r.response().base_offset) }
    });
    let mut base_offsets: Vec<i64> = writes.buffer_unordered(32).map(|r| r.unwrap()).collect().await;
    let elapsed = started.elapsed();
    base_offsets.sort();
    let records: i64 = (0..BATCHES).map(|i| 1 + (i % 5) as i64).sum();

    let committed = raft.metrics().borrow_watched().cluster_committed.expect("something committed");
    for g in &groups {
        g.raft().wait(Some(Duration::from_secs(20))).applied_index_at_least(Some(committed.index), "caught up").await.unwrap();
        assert_eq!(*g.high_watermark().borrow(), records, "every record is below the high watermark");
    }

    // Byte-identical logs up to the commit index: batches, terms and offsets (patched in the bytes).
    let read = |g: &Arc<Group>| {
        g.with_log(|log| {
            let first = log.first_raft_index().unwrap();
            let entries = log.entries(first, committed.index + 1, usize::MAX).unwrap();
            (first, entries.into_iter().map(|e| (e.raft_index, e.bytes)).collect::<Vec<_>>(), log.log_end_offset())
        })
    };
    let (first, reference, end_offset) = read(&groups[0]);
    assert_eq!(reference.last().unwrap().0, committed.index);
    assert_eq!(end_offset, records, "offsets are dense: raft's own entries take none");
    for g in &groups[1..] {
        let (f, entries, end) = read(g);
        assert_eq!((f, end), (first, end_offset));
        assert_eq!(entries.len(), reference.len());
        for (a, b) in entries.iter().zip(&reference) {
            assert_eq!(a, b, "entry {} differs between replicas", a.0);
        }
    }
    let mut next = 0;
    let mut data = 0;
    for (_, bytes) in &reference {
        let h = BatchHeader::parse(bytes).unwrap();
        if h.offset_count() > 0 {
            assert_eq!(h.base_offset, next, "dense offsets in raft order");
            assert_eq!(h.base_offset, base_offsets[data], "the writer got the offset the log holds");
            next += h.offset_count();
            data += 1;
        }
    }
    assert_eq!(data, BATCHES);

    let stats = nodes[(leader - 1) as usize].peer_stats();
    println!("1,000 batches replicated in {elapsed:?}; leader {leader} transport: {stats:#?}");
    for n in &nodes {
        n.shutdown().await;
    }
}

fn rate(after: &BTreeMap<u64, PeerStats>, before: &BTreeMap<u64, PeerStats>, peer: u64, secs: f64) -> (f64, f64) {
    let (a, b) = (after[&peer], before[&peer]);
    ((a.envelopes_sent - b.envelopes_sent) as f64 / secs, (a.messages_sent - b.messages_sent) as f64 / secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_cost_envelopes_per_node_pair_not_per_group() {
    const GROUPS: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    // The defaults: heartbeat 500 ms, election 2.5-5 s, linger 25 ms.
    let config = RaftConfig::default();
    let nodes = start(3, &config, dir.path()).await;
    let ids: Vec<GroupId> = (0..GROUPS).map(|p| GroupId::new([p as u8 % 7; 16], p as i32)).collect();
    let started = Instant::now();
    for id in &ids {
        create_everywhere(&nodes, *id).await;
    }
    for (i, id) in ids.iter().enumerate() {
        initialize(&nodes, i % 3, *id).await;
    }
    println!("{GROUPS} groups x 3 nodes created and initialized in {:?}", started.elapsed());

    // Every group has one leader that all three replicas know.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut leaders = BTreeMap::new();
    for id in &ids {
        let wait = deadline.saturating_duration_since(Instant::now());
        let mut leader = None;
        for n in &nodes {
            let raft = n.group(*id).unwrap().raft().clone();
            let m = raft.wait(Some(wait)).metrics(|m| m.current_leader.is_some(), "a leader").await.unwrap();
            assert!(leader.is_none() || leader == m.current_leader, "replicas of {id} disagree on the leader");
            leader = m.current_leader;
        }
        *leaders.entry(leader.unwrap()).or_insert(0) += 1;
    }
    println!("leaders per node after {:?}: {leaders:?}", started.elapsed());

    // Idle: let the elections' traffic pass, then measure heartbeats only.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Vec<_> = nodes.iter().map(|n| n.peer_stats()).collect();
    let window = Duration::from_secs(5);
    tokio::time::sleep(window).await;
    let after: Vec<_> = nodes.iter().map(|n| n.peer_stats()).collect();

    let secs = window.as_secs_f64();
    let (mut envelopes, mut messages) = (0.0, 0.0);
    for (i, n) in nodes.iter().enumerate() {
        for peer in nodes.iter().map(|p| p.id()).filter(|p| *p != n.id()) {
            let (e, m) = rate(&after[i], &before[i], peer, secs);
            println!("node {} -> node {peer}: {e:.1} envelopes/s carrying {m:.1} messages/s ({:.1} per envelope)", n.id(), m / e.max(1.0));
            // At most one envelope per linger window, plus answers that miss it: a bound from
            // raft.transport.linger.ms (25 ms → 40/s), whatever the number of groups.
            assert!(e < 80.0, "node {} -> {peer}: {e:.1} envelopes/s", n.id());
            envelopes += e;
            messages += m;
        }
    }
    // Each group's leader heartbeats 2 followers twice a second, and each heartbeat is answered.
    let expected = GROUPS as f64 * 2.0 * 2.0 * 1000.0 / config.heartbeat_interval_ms as f64;
    println!("all 6 directions: {envelopes:.0} envelopes/s, {messages:.0} messages/s (about {expected:.0} expected)");
    assert!(messages > expected * 0.5, "the groups are heartbeating: {messages:.0} messages/s");
    assert!(messages / envelopes > 10.0, "coalescing: {:.1} messages per envelope", messages / envelopes);
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_closes_only_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = fast_config();
    let nodes = start(3, &config, dir.path()).await;
    let group = GroupId::METADATA;
    create_everywhere(&nodes, group).await;
    initialize(&nodes, 2, group).await;
    let raft = writable_leader(&nodes, group).await;
    let leader = *raft.node_id();
    let connections: Vec<_> = nodes.iter().map(|n| n.peer_stats()).collect();

    // A hello from a lower id, then garbage: the node answers the hello, then hangs up.
    let attacks: [&[u8]; 3] = [b"GET / HTTP/1.1\r\n\r\n", &[0, 0, 0, 5, 2, 0, 0, 0, 9], &[0xff, 0xff, 0xff, 0xff, 2]];
    for garbage in attacks {
        let mut s = tokio::net::TcpStream::connect(nodes[2].addr()).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the connection was closed");
    }

    // A peer that passes the handshake (node 0 dials node 3), then sends an envelope with an unknown kind.
    let mut s = tokio::net::TcpStream::connect(nodes[2].addr()).await.unwrap();
    frame::write_hello(&mut s, 0).await.unwrap();
    assert_eq!(frame::read_hello(&mut s).await.unwrap(), 3);
    let mut bad = frame::envelope_header(1, frame::MESSAGE_HEADER_BYTES).to_vec();
    bad.extend_from_slice(&[0x42; frame::MESSAGE_HEADER_BYTES]);
    bad[9 + 29..9 + 33].copy_from_slice(&0u32.to_be_bytes()); // body length 0
    s.write_all(&bad).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the connection was closed: {read:?}");
    assert!(!nodes[2].transport().peer(0, None).is_connected());

    // The real connections stayed up and the group still commits.
    for i in 0..10 {
        raft.client_write(batch(i)).await.unwrap();
    }
    for (n, before) in nodes.iter().zip(connections) {
        let now = n.peer_stats();
        for (peer, s) in before {
            assert_eq!(s.connections, now[&peer].connections, "node {} reconnected to {peer}", n.id());
        }
    }

    // A follower stops: calls to it fail as unreachable, and the majority goes on.
    let stopped = nodes.iter().map(|n| n.id()).find(|id| *id != leader).unwrap();
    let addr = nodes[(stopped - 1) as usize].addr();
    nodes[(stopped - 1) as usize].shutdown().await;
    for i in 10..20 {
        raft.client_write(batch(i)).await.unwrap();
    }
    let leader_node = &nodes[(leader - 1) as usize];
    assert!(!leader_node.transport().peer(stopped, None).is_connected());
    // It restarts on the same address and data: the pair reconnects (whichever side dials) and it catches up.
    let restarted = RaftNode::start(stopped, addr, dir.path().join(format!("node-{stopped}")), config.clone()).await.unwrap();
    let g = restarted.create_group(group, log_config()).await.unwrap();
    let committed = raft.metrics().borrow_watched().cluster_committed.unwrap();
    g.raft().wait(Some(Duration::from_secs(20))).applied_index_at_least(Some(committed.index), "caught up").await.unwrap();
    assert_eq!(*g.high_watermark().borrow(), (0..20).map(|i| 1 + (i % 5) as i64).sum::<i64>());
    assert!(leader_node.peer_stats()[&stopped].connections >= 2, "redialled");
    restarted.shutdown().await;
    for n in &nodes {
        n.shutdown().await;
    }
}

/// acks=1: the leader's receipt resolves once the batch is on the leader's
/// disk, with both followers gone, while the write itself cannot commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_one_resolves_on_the_leader_disk_without_a_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start(3, &fast_config(), dir.path()).await;
    let group = GroupId::new([7; 16], 3);
    create_everywhere(&nodes, group).await;
    initialize(&nodes, 0, group).await;
    let raft = writable_leader(&nodes, group).await;
    let first = batch(0);
    let first_records = BatchHeader::parse(first.bytes()).unwrap().record_count as i64;
    raft.client_write(first).await.unwrap();
    let leader_id = raft.metrics().borrow_watched().id;
    let leader = nodes.iter().find(|n| n.id() == leader_id).unwrap();
    let group_handle = leader.group(group).unwrap();
    for n in nodes.iter().filter(|n| n.id() != leader_id) {
        n.shutdown().await;
    }

    let receipt = fjord_raft::AppendReceipt::new();
    let second = batch(1).with_receipt(Arc::clone(&receipt));
    let second_records = BatchHeader::parse(second.bytes()).unwrap().record_count as i64;
    let writer = raft.clone();
    let write = tokio::spawn(async move { writer.client_write(second).await });
    let at = tokio::time::timeout(Duration::from_secs(10), receipt.durable()).await.expect("acks=1 answers without followers").unwrap();
    assert_eq!((at.base_offset, at.last_offset), (first_records, first_records + second_records - 1));
    assert!(group_handle.with_log(|log| log.durable().next_offset) > at.last_offset, "the batch is on the leader's disk");
    // Not committed: the high watermark stays at the first batch, the write waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*group_handle.high_watermark().borrow(), first_records);
    assert!(!write.is_finished(), "acks=all cannot answer without a quorum");
    write.abort();
    leader.shutdown().await;
}

/// Retention on a replicated partition is raft's purge: every replica drops
/// the same whole segments, raft knows the prefix is gone, and the group
/// goes on taking writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_through_raft_on_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start(3, &fast_config(), dir.path()).await;
    let group = GroupId::new([5; 16], 1);
    let config = LogConfig { segment_bytes: 32 << 10, retention_bytes: Some(64 << 10), ..log_config() };
    let groups = create_everywhere_with(&nodes, group, config).await;
    initialize(&nodes, 0, group).await;
    let raft = writable_leader(&nodes, group).await;
    let mut records = 0i64;
    for i in 0..1_000 {
        let b = batch(i);
        records += BatchHeader::parse(b.bytes()).unwrap().record_count as i64;
        raft.client_write(b).await.unwrap();
    }
    for g in &groups {
        g.high_watermark().wait_for(|hw| *hw == records).await.unwrap();
    }
    let before: Vec<u64> = groups.iter().map(|g| g.with_log(|l| l.size_bytes())).collect();
    for g in &groups {
        let point = g.apply_retention(None, Duration::from_secs(20)).await.unwrap().expect("retention.bytes allows deleting");
        g.raft().wait(Some(Duration::from_secs(20))).metrics(|m| m.purged.is_some_and(|p| p.index() >= point), "purged").await.unwrap();
    }
    for (g, before) in groups.iter().zip(before) {
        let (start, size) = g.with_log(|l| (l.log_start_offset(), l.size_bytes()));
        assert!(start > 0 && size < before && size < (64 << 10) + (32 << 10) * 2, "log start {start}, {before} -> {size} bytes");
        assert!(g.with_log(|l| l.read(start, 1, i64::MAX)).is_ok());
    }
    // Every replica cut at the same segment boundary, and writes go on.
    let starts: Vec<i64> = groups.iter().map(|g| g.with_log(|l| l.log_start_offset())).collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}");
    raft.client_write(batch(1_000)).await.unwrap();
    for n in &nodes {
        n.shutdown().await;
    }
}
