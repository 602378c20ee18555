//! Controlled shutdown: a broker told to stop (SIGTERM, Ctrl-C) first hands
//! over what it leads, as Kafka's controlled shutdown does, so clients see
//! a leader move instead of a raft election timeout.
//!
//! 1. Every partition this broker leads gets raft's TransferLeader to the
//!    live voter furthest along its log; the broker waits (bounded) until it
//!    leads none of them.
//! 2. Its last heartbeat says it is going: the controller fences it at once,
//!    so Metadata stops naming it and no leadership comes back to it.
//! 3. If it is the active controller, it hands the metadata group over too.
//!
//! A controller-only node has nothing of steps 1 and 2: it only hands the
//! metadata group over, if it leads it.
//!
//! Each step is bounded by what is left of `limit` (the farewell by one
//! heartbeat interval too); a step that runs out leaves the rest to raft's
//! elections and the controller's session timeout, which lose nothing either.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fjord_raft::registry::Group;
use openraft::Instant as _;
use openraft::async_runtime::watch::WatchReceiver;

use super::Cluster;

/// How often the wait for a hand-over looks again.
const POLL: Duration = Duration::from_millis(50);

/// Runs the three steps above, within `limit` in all.
pub async fn hand_off(cluster: &Arc<Cluster>, limit: Duration) {
    let deadline = Instant::now() + limit;
    cluster.shutting_down.store(true, Ordering::SeqCst);
    let image = cluster.metadata.image();
    let me = cluster.node.id();

    let led: Vec<_> =
        cluster.partitions().map(|ps| ps.all().into_iter().filter(|p| p.is_leader() && p.voters().len() > 1).collect()).unwrap_or_default();
    let mut moving = Vec::new();
    for p in &led {
        let Some(to) = successor(p.group(), me, |id| image.is_live(id as i32)) else { continue };
        match p.group().raft().trigger().transfer_leader(to).await {
            Ok(()) => moving.push(p),
            Err(e) => tracing::warn!(topic = %p.topic, partition = p.index, "leader transfer on shutdown: {e}"),
        }
    }
    if !moving.is_empty() {
        tracing::info!(partitions = moving.len(), "controlled shutdown: handing over the partitions this broker leads");
        let left = wait_until(deadline, || moving.iter().all(|p| !p.is_leader())).await;
        let still: Vec<String> = moving.iter().filter(|p| p.is_leader()).map(|p| format!("{}-{}", p.topic, p.index)).collect();
        if left {
            tracing::info!("controlled shutdown: leadership handed over");
        } else {
            tracing::warn!(partitions = ?still, "controlled shutdown: some partitions were not handed over in time");
        }
    }

    // The heartbeat loop sends the farewell and stops; wait for its answer,
    // for one heartbeat interval at most: a controller quorum that is gone
    // (the whole cluster stopping) cannot answer, and the session timeout
    // fences this broker anyway. A controller-only node sends none.
    let said = if cluster.config.is_broker() {
        cluster.report_now.notify_one();
        let interval = Duration::from_millis(cluster.config.cluster.heartbeat_interval_ms);
        let said = wait_until(deadline.min(Instant::now() + interval), || cluster.farewell_sent.load(Ordering::SeqCst)).await;
        if !said {
            tracing::warn!("controlled shutdown: the controller did not answer the last heartbeat in time");
        }
        said
    } else {
        true
    };

    // Without an answer to the farewell there is no quorum to hand over to.
    // A successor is a voter that is up: a registered controller the
    // controller has not fenced, or a controller-only voter (never
    // registered) that answered raft within a session.
    let metadata = cluster.metadata.group();
    let image = cluster.metadata.image();
    let session = Duration::from_millis(cluster.config.cluster.session_timeout_ms);
    let answered = answered_within(metadata, session);
    let up = |id: u64| match image.brokers.get(&(id as i32)) {
        Some(b) => b.controller && !b.fenced,
        None => answered.contains(&id),
    };
    if said
        && cluster.metadata.is_controller()
        && let Some(to) = successor(metadata, me, up)
        && metadata.raft().trigger().transfer_leader(to).await.is_ok()
    {
        tracing::info!(to, "controlled shutdown: handing the active controller role over");
        wait_until(deadline, || !cluster.metadata.is_controller()).await;
    }
}

/// The voter of `group` other than `me` that has replicated the most of its
/// log, among those `eligible` says may lead.
fn successor(group: &Group, me: u64, eligible: impl Fn(u64) -> bool) -> Option<u64> {
    let m = group.raft().metrics().borrow_watched().clone();
    let replication = m.replication.as_ref()?;
    m.membership_config
        .membership()
        .voter_ids()
        .filter(|v| *v != me && eligible(*v))
        .max_by_key(|v| replication.get(v).cloned().flatten().map_or(0, |l| l.index() + 1))
}

/// The nodes that acknowledged this leader's raft heartbeats or appends
/// within `window` (none unless this node leads `group`).
fn answered_within(group: &Group, window: Duration) -> Vec<u64> {
    let m = group.raft().metrics().borrow_watched().clone();
    m.heartbeat.iter().flatten().filter(|(_, at)| at.as_ref().is_some_and(|t| t.elapsed() < window)).map(|(id, _)| *id).collect()
}

/// Polls `done` until it holds (true) or `deadline` passes (false).
async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
