//! One classic-protocol group: Kafka's `ClassicGroup` state machine
//! (Empty → PreparingRebalance → CompletingRebalance → Stable, and back),
//! with its members, their parked JoinGroup and SyncGroup replies, and the
//! deadlines that drive it.
//!
//! Pure state: no I/O and no clock of its own. The coordinator calls it
//! under its shard's lock with the time, sends the replies it hands back,
//! and writes the [`Write`]s it asks for to `__consumer_offsets`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

use super::records::{GroupValue, MemberValue};

/// Kafka's `ClassicGroupState`; the names are what DescribeGroups and ListGroups show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// Broker settings the state machine follows.
#[derive(Debug, Clone)]
pub struct GroupLimits {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.max.size`.
    pub max_size: usize,
}

/// A JoinGroup as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub version: i16,
}

#[derive(Debug, Clone, Default)]
pub struct JoinReply {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// (member id, instance id, metadata of the chosen protocol): the leader's only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinReply {
    pub fn error(code: i16, member_id: &str) -> Self {
        Self { error: code, generation: -1, member_id: member_id.to_string(), ..Default::default() }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncReply {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncReply {
    pub fn error(code: i16) -> Self {
        Self { error: code, ..Default::default() }
    }
}

/// A reply now, or one that comes when the rebalance gets there.
pub enum Answer<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// A group record the coordinator must append; `then` says what to do once
/// it is committed (or failed).
#[derive(Debug)]
pub struct Write {
    pub value: Option<GroupValue>,
    pub then: After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// The leader's assignment of this generation is durable: go Stable.
    CompleteSync(i32),
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinReply>>,
    sync_waiter: Option<oneshot::Sender<SyncReply>>,
    /// Session expiry, pushed on by heartbeats; not checked while the
    /// member waits in a Join or Sync.
    deadline: Instant,
}

impl Member {
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol.and_then(|p| self.protocols.iter().find(|(n, _)| n == p)).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    fn session(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms.max(0) as u64)
    }

    fn answer_join(&mut self, reply: JoinReply) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(reply);
        }
    }

    fn answer_sync(&mut self, reply: SyncReply) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(reply);
        }
    }
}

/// `group.initial.rebalance.delay.ms` in progress: a group leaving Empty
/// waits for more members, extended while they keep coming, bounded by the
/// rebalance timeout (Kafka's `InitialDelayedJoin`).
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    remaining: Duration,
    member_added: bool,
}

pub struct ClassicGroup {
    pub id: String,
    pub state: State,
    /// When the group entered its state (ms since the epoch).
    pub state_timestamp: i64,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they rejoin.
    pending: BTreeMap<String, Instant>,
    statics: HashMap<String, String>,
    /// Members of this generation that have not sent SyncGroup yet.
    pending_sync: BTreeSet<String>,
    join_deadline: Option<Instant>,
    initial: Option<InitialDelay>,
    sync_deadline: Option<Instant>,
    /// The generation whose assignment is being written.
    persisting: Option<i32>,
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Builder::from_random_bytes(rand::random()).into_uuid().hyphenated())
}

impl ClassicGroup {
    pub fn new(id: &str, now_ms: i64) -> Self {
        Self {
            id: id.to_string(),
            state: State::Empty,
            state_timestamp: now_ms,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            statics: HashMap::new(),
            pending_sync: BTreeSet::new(),
            join_deadline: None,
            initial: None,
            sync_deadline: None,
            persisting: None,
        }
    }

    /// The group as its record left it: Stable with its members, or Empty.
    pub fn from_value(id: &str, v: &GroupValue, now: Instant) -> Self {
        let mut g = Self::new(id, v.current_state_timestamp);
        g.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
        g.protocol = v.protocol.clone();
        g.generation = v.generation;
        g.leader = v.leader.clone();
        for m in &v.members {
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocols: vec![(v.protocol.clone().unwrap_or_default(), m.subscription.clone())],
                assignment: m.assignment.clone(),
                join_waiter: None,
                sync_waiter: None,
                deadline: now + Duration::from_millis(m.session_timeout.max(0) as u64),
            };
            if let Some(i) = &m.group_instance_id {
                g.statics.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(m.member_id.clone(), member);
        }
        g.state = if g.members.is_empty() { State::Empty } else { State::Stable };
        g
    }

    /// The record that stores the group as it is now.
    pub fn to_value(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    fn transition(&mut self, to: State, now_ms: i64) {
        self.state = to;
        self.state_timestamp = now_ms;
    }

    fn rebalance_timeout(&self) -> Duration {
        let ms = self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0);
        Duration::from_millis(ms.max(0) as u64)
    }

    /// Protocols every member supports.
    fn common_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else { return Vec::new() };
        let mut names: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            names.retain(|n| m.protocols.iter().any(|(p, _)| p == n));
        }
        names
    }

    /// Kafka's `supportsProtocols`: whether a member with these protocols may join.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let common = self.common_protocols();
        self.protocol_type.as_deref() == Some(protocol_type) && protocols.iter().any(|(n, _)| common.contains(n))
    }

    /// Each member votes for its first preference among the common
    /// protocols; most votes wins, ties go to the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| common.contains(n)) {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        let order: Vec<&str> = match self.leader.as_ref().and_then(|l| self.members.get(l)) {
            Some(l) => l.protocols.iter().map(|(n, _)| n.as_str()).filter(|n| common.iter().any(|c| c == n)).collect(),
            None => common.iter().map(String::as_str).collect(),
        };
        let best = order.iter().map(|n| votes.get(n).copied().unwrap_or(0)).max()?;
        order.into_iter().find(|n| votes.get(n).copied().unwrap_or(0) == best).map(str::to_string)
    }

    /// Kafka's `validateMember`.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(i) = instance_id {
            return match self.statics.get(i) {
                None => Err(E::UnknownMemberId.code()),
                Some(id) if id != member_id => Err(E::FencedInstanceId.code()),
                Some(_) => Ok(()),
            };
        }
        if self.members.contains_key(member_id) { Ok(()) } else { Err(E::UnknownMemberId.code()) }
    }

    /// The current generation as `member_id` is told it; the leader also gets the members.
    fn reply_for(&self, member_id: &str) -> JoinReply {
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinReply {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if is_leader { self.member_list() } else { Vec::new() },
        }
    }

    fn member_list(&self) -> Vec<(String, Option<String>, Bytes)> {
        self.members.values().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(self.protocol.as_deref()))).collect()
    }

    pub fn can_rebalance(&self) -> bool {
        matches!(self.state, State::Stable | State::CompletingRebalance | State::Empty)
    }

    // ---- JoinGroup ----------------------------------------------------

    pub fn join(&mut self, req: JoinRequest, limits: &GroupLimits, now: Instant, now_ms: i64) -> (Answer<JoinReply>, Vec<Write>) {
        let mut writes = Vec::new();
        let answer = self.join_inner(req, limits, now, now_ms, &mut writes);
        (answer, writes)
    }

    fn join_inner(
        &mut self,
        req: JoinRequest,
        limits: &GroupLimits,
        now: Instant,
        now_ms: i64,
        writes: &mut Vec<Write>,
    ) -> Answer<JoinReply> {
        let fail = |code: i16| Answer::Now(JoinReply::error(code, &req.member_id));
        if self.state == State::Dead {
            return fail(E::CoordinatorNotAvailable.code());
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return fail(E::InconsistentGroupProtocol.code());
        }
        if req.member_id.is_empty() {
            if self.is_full(limits) {
                return fail(E::GroupMaxSizeReached.code());
            }
            let prefix = req.instance_id.clone().unwrap_or_else(|| req.client_id.clone());
            let id = new_member_id(&prefix);
            if let Some(instance) = req.instance_id.clone() {
                if self.statics.contains_key(&instance) {
                    return self.replace_static(&instance, id, req, limits, now, now_ms, writes);
                }
                return self.add_and_rebalance(id, req, limits, now, now_ms, writes);
            }
            if req.version >= 4 {
                self.pending.insert(id.clone(), now + Duration::from_millis(req.session_timeout_ms.max(0) as u64));
                return Answer::Now(JoinReply::error(E::MemberIdRequired.code(), &id));
            }
            return self.add_and_rebalance(id, req, limits, now, now_ms, writes);
        }
        if req.instance_id.is_none() && self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_and_rebalance(id, req, limits, now, now_ms, writes);
        }
        if let Err(code) = self.validate_member(&req.member_id, req.instance_id.as_deref()) {
            return fail(code);
        }
        let id = req.member_id.clone();
        match self.state {
            State::PreparingRebalance => self.update_and_park(&id, req, limits, now, now_ms, writes),
            State::CompletingRebalance => {
                if self.same_metadata(&id, &req.protocols) {
                    Answer::Now(self.reply_for(&id))
                } else {
                    self.update_and_park(&id, req, limits, now, now_ms, writes)
                }
            }
            State::Stable => {
                let is_leader = self.leader.as_deref() == Some(id.as_str());
                if is_leader || !self.same_metadata(&id, &req.protocols) {
                    self.update_and_park(&id, req, limits, now, now_ms, writes)
                } else {
                    Answer::Now(self.reply_for(&id))
                }
            }
            State::Empty => fail(E::UnknownMemberId.code()),
            State::Dead => fail(E::CoordinatorNotAvailable.code()),
        }
    }

    /// Kafka's `acceptJoiningMember`: the size limit counts members that
    /// are, or will be, in the next generation.
    fn is_full(&self, limits: &GroupLimits) -> bool {
        let count = match self.state {
            State::PreparingRebalance => self.members.values().filter(|m| m.awaiting_join()).count(),
            State::Stable | State::CompletingRebalance => self.members.len(),
            State::Empty | State::Dead => return false,
        };
        count >= limits.max_size
    }

    fn same_metadata(&self, id: &str, protocols: &[(String, Bytes)]) -> bool {
        self.members.get(id).is_some_and(|m| m.protocols == protocols)
    }

    fn add_and_rebalance(
        &mut self,
        id: String,
        req: JoinRequest,
        limits: &GroupLimits,
        now: Instant,
        now_ms: i64,
        writes: &mut Vec<Write>,
    ) -> Answer<JoinReply> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let member = Member {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            deadline: now,
        };
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, member);
        if let Some(initial) = &mut self.initial {
            initial.member_added = true;
        }
        self.rebalance_or_complete(limits, now, now_ms, writes);
        Answer::Later(rx)
    }

    fn update_and_park(
        &mut self,
        id: &str,
        req: JoinRequest,
        limits: &GroupLimits,
        now: Instant,
        now_ms: i64,
        writes: &mut Vec<Write>,
    ) -> Answer<JoinReply> {
        let (tx, rx) = oneshot::channel();
        let m = self.members.get_mut(id).expect("validated member");
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        m.protocols = req.protocols;
        // A retried join replaces the earlier one, which gets told to retry.
        m.answer_join(JoinReply::error(E::RebalanceInProgress.code(), id));
        m.join_waiter = Some(tx);
        self.rebalance_or_complete(limits, now, now_ms, writes);
        Answer::Later(rx)
    }

    /// Kafka's `replaceStaticMember` and what follows it: a static member
    /// that restarted takes over its old id's place and assignment.
    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        &mut self,
        instance: &str,
        new_id: String,
        req: JoinRequest,
        limits: &GroupLimits,
        now: Instant,
        now_ms: i64,
        writes: &mut Vec<Write>,
    ) -> Answer<JoinReply> {
        let old_id = self.statics.get(instance).cloned().expect("known instance");
        let old_leader = self.leader.clone();
        let mut m = self.members.remove(&old_id).expect("static member present");
        m.answer_join(JoinReply::error(E::FencedInstanceId.code(), &old_id));
        m.answer_sync(SyncReply::error(E::FencedInstanceId.code()));
        m.protocols = req.protocols.clone();
        m.id = new_id.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        m.deadline = now + m.session();
        self.members.insert(new_id.clone(), m);
        self.statics.insert(instance.to_string(), new_id.clone());
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        match self.state {
            State::Stable if self.select_protocol() == self.protocol => {
                writes.push(Write { value: Some(self.to_value()), then: After::Nothing });
                let mut reply = self.reply_for(&new_id);
                let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                reply.skip_assignment = is_leader && req.version >= 9;
                if !reply.skip_assignment {
                    reply.members.clear();
                    // Before v9 Kafka names the leader as it was before the
                    // replacement, so a returning leader does not run its
                    // assignor for a group that stays Stable.
                    reply.leader = old_leader.unwrap_or_default();
                }
                Answer::Now(reply)
            }
            // The new metadata would change the protocol, or a rebalance is on: join it.
            _ => self.update_and_park(&new_id, req, limits, now, now_ms, writes),
        }
    }

    /// Kafka's `maybePrepareRebalanceOrCompleteJoin`.
    fn rebalance_or_complete(&mut self, limits: &GroupLimits, now: Instant, now_ms: i64, writes: &mut Vec<Write>) {
        if self.can_rebalance() {
            self.prepare_rebalance(limits, now, now_ms);
        }
        // Outside the initial delay, a join phase everyone has joined ends at once.
        self.maybe_complete_join(now, now_ms, writes);
    }

    /// Starts a rebalance: parked syncs learn of it, the join phase opens.
    pub fn prepare_rebalance(&mut self, limits: &GroupLimits, now: Instant, now_ms: i64) {
        if self.state == State::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                m.answer_sync(SyncReply::error(E::RebalanceInProgress.code()));
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        self.persisting = None;
        let from_empty = self.state == State::Empty;
        // Kafka logs this too ("Preparing to rebalance group"): the one line
        // that says why consumers stopped to rejoin.
        tracing::info!(group = %self.id, from = ?self.state, generation = self.generation, members = self.members.len(), "preparing to rebalance");
        self.transition(State::PreparingRebalance, now_ms);
        if from_empty && !limits.initial_rebalance_delay.is_zero() {
            let delay = limits.initial_rebalance_delay;
            self.initial = Some(InitialDelay { remaining: self.rebalance_timeout().saturating_sub(delay), member_added: false });
            self.join_deadline = Some(now + delay);
        } else {
            self.initial = None;
            self.join_deadline = Some(now + self.rebalance_timeout());
        }
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(Member::awaiting_join)
    }

    fn maybe_complete_join(&mut self, now: Instant, now_ms: i64, writes: &mut Vec<Write>) {
        if self.state == State::PreparingRebalance && self.initial.is_none() && self.all_joined() {
            self.complete_join(now, now_ms, writes);
        }
    }

    /// Kafka's `completeClassicGroupJoin`: drop who did not rejoin, pick a
    /// leader and protocol, start the next generation, answer the joins.
    fn complete_join(&mut self, now: Instant, now_ms: i64, writes: &mut Vec<Write>) {
        let gone: Vec<String> =
            self.members.values().filter(|m| !m.awaiting_join() && m.instance_id.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.join_deadline = None;
        self.initial = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(State::Empty, now_ms);
            writes.push(Write { value: Some(self.to_value()), then: After::Nothing });
            return;
        }
        let leader_joined = self.leader.as_ref().and_then(|l| self.members.get(l)).is_some_and(Member::awaiting_join);
        if !leader_joined {
            let first = self.members.values().find(|m| m.awaiting_join()).or_else(|| self.members.values().next());
            self.leader = first.map(|m| m.id.clone());
        }
        self.protocol = self.select_protocol();
        self.transition(State::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            if self.members[id].awaiting_join() {
                let reply = self.reply_for(id);
                self.members.get_mut(id).expect("member").answer_join(reply);
            }
            let m = self.members.get_mut(id).expect("member");
            m.deadline = now + m.session();
        }
        self.pending_sync = ids.into_iter().collect();
        self.sync_deadline = Some(now + self.rebalance_timeout());
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            m.answer_join(JoinReply::error(E::UnknownMemberId.code(), id));
            m.answer_sync(SyncReply::error(E::UnknownMemberId.code()));
            if let Some(i) = &m.instance_id {
                self.statics.remove(i);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        if self.members.is_empty() {
            self.protocol_type = None;
        }
    }

    // ---- SyncGroup ----------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> (Answer<SyncReply>, Vec<Write>) {
        let fail = |code: i16| (Answer::Now(SyncReply::error(code)), Vec::new());
        match self.state {
            State::Dead => return fail(E::CoordinatorNotAvailable.code()),
            State::Empty => return fail(E::UnknownMemberId.code()),
            _ => {}
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return fail(code);
        }
        if generation != self.generation {
            return fail(E::IllegalGeneration.code());
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return fail(E::InconsistentGroupProtocol.code());
        }
        match self.state {
            State::PreparingRebalance => fail(E::RebalanceInProgress.code()),
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(member_id).expect("validated member");
                m.answer_sync(SyncReply::error(E::RebalanceInProgress.code()));
                m.sync_waiter = Some(tx);
                self.pending_sync.remove(member_id);
                let mut writes = Vec::new();
                if self.leader.as_deref() == Some(member_id) && self.persisting.is_none() {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.persisting = Some(self.generation);
                    writes.push(Write { value: Some(self.to_value()), then: After::CompleteSync(self.generation) });
                }
                (Answer::Later(rx), writes)
            }
            State::Stable => {
                self.pending_sync.remove(member_id);
                let m = &self.members[member_id];
                (Answer::Now(self.sync_reply(m)), Vec::new())
            }
            State::Empty | State::Dead => unreachable!("checked above"),
        }
    }

    fn sync_reply(&self, m: &Member) -> SyncReply {
        SyncReply {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: m.assignment.clone(),
        }
    }

    /// The leader's assignment of `generation` was written (`Ok`) or not.
    pub fn complete_sync(&mut self, generation: i32, result: Result<(), i16>, limits: &GroupLimits, now: Instant, now_ms: i64) {
        if self.state != State::CompletingRebalance || self.generation != generation || self.persisting != Some(generation) {
            return;
        }
        self.persisting = None;
        match result {
            Ok(()) => {
                self.transition(State::Stable, now_ms);
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let reply = self.sync_reply(&self.members[&id]);
                    let m = self.members.get_mut(&id).expect("member");
                    m.answer_sync(reply);
                    m.deadline = now + m.session();
                }
            }
            Err(code) => {
                for m in self.members.values_mut() {
                    m.answer_sync(SyncReply::error(code));
                }
                self.prepare_rebalance(limits, now, now_ms);
            }
        }
    }

    // ---- Heartbeat and LeaveGroup -------------------------------------

    pub fn heartbeat(&mut self, member_id: &str, instance_id: Option<&str>, generation: i32, now: Instant) -> i16 {
        match self.state {
            State::Dead => return E::CoordinatorNotAvailable.code(),
            State::Empty => return E::UnknownMemberId.code(),
            _ => {}
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return code;
        }
        if generation != self.generation {
            return E::IllegalGeneration.code();
        }
        let m = self.members.get_mut(member_id).expect("validated member");
        m.deadline = now + m.session();
        if self.state == State::PreparingRebalance { E::RebalanceInProgress.code() } else { 0 }
    }

    /// Removes members (member id, instance id); per-member error codes in order.
    pub fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        limits: &GroupLimits,
        now: Instant,
        now_ms: i64,
    ) -> (Vec<i16>, Vec<Write>) {
        let mut codes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance_id) in leaving {
            let code = if member_id.is_empty() {
                // Admin removal by instance id (KIP-345).
                match instance_id.as_ref().and_then(|i| self.statics.get(i)).cloned() {
                    Some(id) => {
                        self.remove_member(&id);
                        removed = true;
                        0
                    }
                    None => E::UnknownMemberId.code(),
                }
            } else if instance_id.is_none() && self.pending.remove(member_id).is_some() {
                0
            } else {
                match self.validate_member(member_id, instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_member(member_id);
                        removed = true;
                        0
                    }
                    Err(code) => code,
                }
            };
            codes.push(code);
        }
        let mut writes = Vec::new();
        if removed {
            self.after_removal(limits, now, now_ms, &mut writes);
        } else if self.state == State::PreparingRebalance {
            self.maybe_complete_join(now, now_ms, &mut writes);
        }
        (codes, writes)
    }

    fn after_removal(&mut self, limits: &GroupLimits, now: Instant, now_ms: i64, writes: &mut Vec<Write>) {
        if matches!(self.state, State::Stable | State::CompletingRebalance) {
            self.prepare_rebalance(limits, now, now_ms);
        }
        // The last member gone, or the rest already rejoined: the join ends now.
        self.maybe_complete_join(now, now_ms, writes);
    }

    // ---- Timers -------------------------------------------------------

    /// Runs what is due at `now`: expired sessions, the end of the join
    /// phase, members that never synced.
    pub fn tick(&mut self, limits: &GroupLimits, now: Instant, now_ms: i64) -> Vec<Write> {
        let mut writes = Vec::new();
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join() && m.sync_waiter.is_none() && m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            tracing::info!(group = %self.id, members = ?expired, "session expired");
            for id in &expired {
                self.remove_member(id);
            }
            self.after_removal(limits, now, now_ms, &mut writes);
        }
        if self.state == State::PreparingRebalance && self.join_deadline.is_some_and(|d| d <= now) {
            match self.initial {
                Some(InitialDelay { remaining, member_added: true }) if !remaining.is_zero() => {
                    let delay = limits.initial_rebalance_delay.min(remaining);
                    self.initial = Some(InitialDelay { remaining: remaining - delay, member_added: false });
                    self.join_deadline = Some(now + delay);
                }
                _ => self.complete_join(now, now_ms, &mut writes),
            }
        } else if self.state == State::PreparingRebalance {
            // Pending members that expired may have been all the join waited for.
            self.maybe_complete_join(now, now_ms, &mut writes);
        }
        if matches!(self.state, State::CompletingRebalance | State::Stable)
            && self.sync_deadline.is_some_and(|d| d <= now)
            && self.persisting.is_none()
        {
            self.sync_deadline = None;
            let never_synced: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
            if !never_synced.is_empty() {
                tracing::info!(group = %self.id, members = ?never_synced, "no SyncGroup within the rebalance timeout");
                for id in &never_synced {
                    self.remove_member(id);
                }
                self.after_removal(limits, now, now_ms, &mut writes);
            }
        }
        writes
    }

    // ---- Offsets and admin --------------------------------------------

    /// Kafka's `ClassicGroup.validateOffsetCommit`.
    pub fn validate_offset_commit(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> Result<(), i16> {
        self.validate_commit(member_id, instance_id, generation, false)
    }

    /// The checks of a TxnOffsetCommit: as an OffsetCommit's, but a commit
    /// without member and generation (v0-2 carry none) is taken in any state,
    /// and one during CompletingRebalance too (Kafka does not enforce the
    /// group's state on transactional commits).
    pub fn validate_txn_offset_commit(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> Result<(), i16> {
        self.validate_commit(member_id, instance_id, generation, true)
    }

    fn validate_commit(&self, member_id: &str, instance_id: Option<&str>, generation: i32, transactional: bool) -> Result<(), i16> {
        if self.state == State::Dead {
            return Err(E::CoordinatorNotAvailable.code());
        }
        if generation < 0 && self.state == State::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(E::IllegalGeneration.code());
            }
        } else if !transactional && self.state != State::Empty {
            return Err(E::UnknownMemberId.code());
        }
        if !transactional && self.state == State::CompletingRebalance {
            return Err(E::RebalanceInProgress.code());
        }
        Ok(())
    }

    /// Topics the members subscribe to, when the group speaks the consumer
    /// protocol and its subscriptions parse; None when they cannot be known.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(super::subscription::topics(&m.metadata(self.protocol.as_deref()))?);
        }
        Some(topics)
    }

    /// Marks the group deleted: every parked request learns it.
    pub fn kill(&mut self, now_ms: i64) {
        for m in self.members.values_mut() {
            let reply = JoinReply::error(E::CoordinatorNotAvailable.code(), &m.id);
            m.answer_join(reply);
            m.answer_sync(SyncReply::error(E::CoordinatorNotAvailable.code()));
        }
        self.transition(State::Dead, now_ms);
    }
}

#[cfg(test)]
mod tests;
