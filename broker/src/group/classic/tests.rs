//! The state machine driven by hand, with the time passed in.

use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn limits(delay_ms: u64) -> GroupLimits {
    GroupLimits { initial_rebalance_delay: Duration::from_millis(delay_ms), max_size: 10 }
}

fn req(member_id: &str, instance: Option<&str>, protocols: &[(&str, &[u8])]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m))).collect(),
        version: 9,
    }
}

fn range() -> Vec<(&'static str, &'static [u8])> {
    vec![("range", b"r".as_slice())]
}

fn now_reply(a: Answer<JoinReply>) -> JoinReply {
    match a {
        Answer::Now(r) => r,
        Answer::Later(_) => panic!("expected an answer now"),
    }
}

fn parked<T>(a: Answer<T>) -> oneshot::Receiver<T> {
    match a {
        Answer::Later(rx) => rx,
        Answer::Now(_) => panic!("expected to wait"),
    }
}

/// Joins as a new dynamic member: MEMBER_ID_REQUIRED, then the rejoin (parked).
fn join_new(g: &mut ClassicGroup, l: &GroupLimits, now: Instant) -> (String, oneshot::Receiver<JoinReply>) {
    let first = now_reply(g.join(req("", None, &range()), l, now, 0).0);
    assert_eq!(first.error, E::MemberIdRequired.code());
    assert!(first.member_id.starts_with("client-"), "{}", first.member_id);
    let id = first.member_id;
    let rx = parked(g.join(req(&id, None, &range()), l, now, 0).0);
    (id, rx)
}

/// Two members through the initial delay to a Stable generation.
fn stable_pair(l: &GroupLimits, t0: Instant) -> (ClassicGroup, String, String) {
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut ra) = join_new(&mut g, l, t0);
    let (b, mut rb) = join_new(&mut g, l, t0 + SECOND);
    assert!(g.tick(l, t0 + 3 * SECOND, 0).is_empty());
    assert!(ra.try_recv().is_err(), "a member arrived in the delay: the delay is extended");
    g.tick(l, t0 + 6 * SECOND, 0);
    let (ra, rb) = (ra.try_recv().unwrap(), rb.try_recv().unwrap());
    assert_eq!((ra.error, rb.error, ra.generation, rb.generation), (0, 0, 1, 1));
    assert_eq!(ra.leader, a, "the first member leads");
    assert_eq!(ra.members.len(), 2, "the leader gets the members");
    assert!(rb.members.is_empty(), "followers do not");
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    assert_eq!(g.state, State::CompletingRebalance);
    let (ans_b, w) = g.sync(&b, None, 1, Some("consumer"), Some("range"), vec![]);
    assert!(w.is_empty(), "a follower's sync writes nothing");
    let mut sb = parked(ans_b);
    let (ans_a, w) = g.sync(&a, None, 1, None, None, vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))]);
    let mut sa = parked(ans_a);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].then, After::CompleteSync(1));
    assert_eq!(w[0].value.as_ref().unwrap().members.len(), 2);
    assert!(sb.try_recv().is_err(), "no assignment before the record is written");
    g.complete_sync(1, Ok(()), l, t0 + 6 * SECOND, 0);
    assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from_static(b"A"));
    assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"B"));
    assert_eq!(g.state, State::Stable);
    (g, a, b)
}

#[test]
fn two_members_rebalance_to_stable() {
    let l = limits(3000);
    stable_pair(&l, Instant::now());
}

#[test]
fn an_expired_member_is_dropped_and_the_rest_rebalance() {
    let l = limits(3000);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&l, t0);
    let t = t0 + 6 * SECOND;
    assert_eq!(g.heartbeat(&a, None, 1, t + 8 * SECOND), 0);
    // b never heartbeats again: its 10 s session ends at t + 10 s.
    g.tick(&l, t + 11 * SECOND, 0);
    assert_eq!(g.state, State::PreparingRebalance);
    assert_eq!(g.heartbeat(&b, None, 1, t + 11 * SECOND), E::UnknownMemberId.code());
    assert_eq!(g.heartbeat(&a, None, 1, t + 11 * SECOND), E::RebalanceInProgress.code(), "a learns it must rejoin");
    let mut ra = parked(g.join(req(&a, None, &range()), &l, t + 12 * SECOND, 0).0);
    let r = ra.try_recv().expect("every remaining member joined: no wait");
    assert_eq!((r.generation, r.leader.as_str(), r.members.len()), (2, a.as_str(), 1));
    assert_eq!(g.heartbeat(&a, None, 1, t + 12 * SECOND), E::IllegalGeneration.code());
}

#[test]
fn a_member_that_does_not_rejoin_in_time_is_dropped() {
    let l = limits(0);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&limits(3000), t0);
    let t = t0 + 6 * SECOND;
    // a changes its subscription: a rebalance; b keeps heartbeating but never rejoins.
    let mut ra = parked(g.join(req(&a, None, &[("range", b"r2")]), &l, t, 0).0);
    for s in 1..30 {
        assert_eq!(g.heartbeat(&b, None, 1, t + s * SECOND), E::RebalanceInProgress.code());
        g.tick(&l, t + s * SECOND, 0);
    }
    assert!(ra.try_recv().is_err());
    g.tick(&l, t + 31 * SECOND, 0);
    let r = ra.try_recv().unwrap();
    assert_eq!((r.error, r.generation, r.members.len()), (0, 2, 1), "the rebalance timeout ends the join without b");
    assert_eq!(g.heartbeat(&b, None, 2, t + 31 * SECOND), E::UnknownMemberId.code());
}

#[test]
fn leaving_rebalances_and_the_last_leaver_empties_the_group() {
    let l = limits(3000);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&l, t0);
    let t = t0 + 7 * SECOND;
    let (codes, _) = g.leave(&[(b.clone(), None), ("nobody".into(), None)], &l, t, 0);
    assert_eq!(codes, vec![0, E::UnknownMemberId.code()]);
    assert_eq!(g.state, State::PreparingRebalance);
    let mut ra = parked(g.join(req(&a, None, &range()), &l, t, 0).0);
    assert_eq!(ra.try_recv().unwrap().generation, 2);
    let (codes, writes) = g.leave(&[(a.clone(), None)], &l, t, 5);
    assert_eq!(codes, vec![0]);
    assert_eq!(g.state, State::Empty, "no members left: the join phase ends at once");
    assert_eq!(g.generation, 3);
    assert_eq!(writes.len(), 1, "the empty group is written");
    assert!(writes[0].value.as_ref().is_some_and(|v| v.members.is_empty()));
}

#[test]
fn sync_and_heartbeat_check_member_and_generation() {
    let l = limits(3000);
    let t0 = Instant::now();
    let (mut g, a, _) = stable_pair(&l, t0);
    let code = |a: (Answer<SyncReply>, Vec<Write>)| match a.0 {
        Answer::Now(r) => r.error,
        Answer::Later(_) => panic!("parked"),
    };
    assert_eq!(code(g.sync(&a, None, 0, None, None, vec![])), E::IllegalGeneration.code());
    assert_eq!(code(g.sync("x", None, 1, None, None, vec![])), E::UnknownMemberId.code());
    assert_eq!(code(g.sync(&a, None, 1, Some("connect"), None, vec![])), E::InconsistentGroupProtocol.code());
    assert_eq!(code(g.sync(&a, None, 1, None, None, vec![])), 0, "Stable: the stored assignment");
    let other = now_reply(g.join(JoinRequest { protocol_type: "connect".into(), ..req("", None, &range()) }, &l, t0, 0).0);
    assert_eq!(other.error, E::InconsistentGroupProtocol.code());
    let none_common = now_reply(g.join(req("", None, &[("roundrobin", b"x")]), &l, t0, 0).0);
    assert_eq!(none_common.error, E::InconsistentGroupProtocol.code());
}

#[test]
fn a_restarted_static_member_takes_over_without_a_rebalance() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let mut r1 = parked(g.join(req("", Some("i-1"), &range()), &l, t0, 0).0);
    let r1 = r1.try_recv().unwrap();
    assert!(r1.member_id.starts_with("i-1-"), "static ids start with the instance id");
    let (a, w) = g.sync(&r1.member_id, Some("i-1"), 1, None, None, vec![(r1.member_id.clone(), Bytes::from_static(b"A"))]);
    let mut sa = parked(a);
    assert_eq!(w.len(), 1);
    g.complete_sync(1, Ok(()), &l, t0, 0);
    assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from_static(b"A"));
    let (answer, writes) = g.join(req("", Some("i-1"), &range()), &l, t0 + SECOND, 0);
    let r2 = now_reply(answer);
    assert_eq!((r2.error, r2.generation, g.state), (0, 1, State::Stable), "same generation, no rebalance");
    assert!(r2.skip_assignment, "the leader keeps the assignment (v9)");
    assert_ne!(r2.member_id, r1.member_id);
    assert_eq!(writes.len(), 1, "the new member id is written");
    assert_eq!(g.heartbeat(&r1.member_id, Some("i-1"), 1, t0 + SECOND), E::FencedInstanceId.code());
    assert_eq!(g.heartbeat(&r2.member_id, Some("i-1"), 1, t0 + SECOND), 0);
    let (s, _) = g.sync(&r2.member_id, Some("i-1"), 1, None, None, vec![]);
    let Answer::Now(s) = s else { panic!("parked") };
    assert_eq!(s.assignment, Bytes::from_static(b"A"), "the assignment moved to the new id");
    // Before v9 there is no SkipAssignment: the reply names the old leader id,
    // so the returning leader does not assign (librdkafka sends v5).
    let r3 = now_reply(g.join(JoinRequest { version: 5, ..req("", Some("i-1"), &range()) }, &l, t0 + 2 * SECOND, 0).0);
    assert_eq!((r3.error, r3.skip_assignment, r3.members.len()), (0, false, 0));
    assert_eq!(r3.leader, r2.member_id, "the leader as it was before the replacement");
    assert_eq!(g.leader.as_deref(), Some(r3.member_id.as_str()), "the group itself follows the new id");
}

#[test]
fn offset_commits_follow_kafkas_checks() {
    let l = limits(3000);
    let t0 = Instant::now();
    let empty = ClassicGroup::new("g", 0);
    assert_eq!(empty.validate_offset_commit("", None, -1), Ok(()), "admin commit to an empty group");
    assert_eq!(empty.validate_offset_commit("m", None, 1), Err(E::UnknownMemberId.code()));
    let (mut g, a, _) = stable_pair(&l, t0);
    assert_eq!(g.validate_offset_commit(&a, None, 1), Ok(()));
    assert_eq!(g.validate_offset_commit(&a, None, 0), Err(E::IllegalGeneration.code()));
    assert_eq!(g.validate_offset_commit("", None, -1), Err(E::UnknownMemberId.code()), "admin commit to an active group");
    let _ra = g.join(req(&a, None, &[("range", b"new")]), &l, t0 + 7 * SECOND, 0);
    assert_eq!(g.validate_offset_commit(&a, None, 1), Ok(()), "PreparingRebalance takes commits of the old generation");
}

#[test]
fn txn_offset_commits_follow_kafkas_checks() {
    let t0 = Instant::now();
    let empty = ClassicGroup::new("g", 0);
    assert_eq!(empty.validate_txn_offset_commit("", None, -1), Ok(()));
    assert_eq!(empty.validate_txn_offset_commit("m", None, 1), Err(E::UnknownMemberId.code()));
    let l = limits(3000);
    let (g, a, _) = stable_pair(&l, t0);
    assert_eq!(g.validate_txn_offset_commit(&a, None, 1), Ok(()));
    assert_eq!(g.validate_txn_offset_commit(&a, None, 2), Err(E::IllegalGeneration.code()));
    assert_eq!(g.validate_txn_offset_commit("x", None, 1), Err(E::UnknownMemberId.code()));
    assert_eq!(g.validate_txn_offset_commit("", None, -1), Ok(()), "v0-2 name no member: taken from an active group");
    assert_eq!(g.validate_offset_commit("", None, -1), Err(E::UnknownMemberId.code()), "unlike OffsetCommit");

    let l = limits(0);
    let mut c = ClassicGroup::new("c", 0);
    let mut joined = parked(c.join(req("", Some("i-1"), &range()), &l, t0, 0).0);
    let m = joined.try_recv().unwrap().member_id;
    assert_eq!(c.state, State::CompletingRebalance);
    assert_eq!(c.validate_offset_commit(&m, Some("i-1"), 1), Err(E::RebalanceInProgress.code()));
    assert_eq!(c.validate_txn_offset_commit(&m, Some("i-1"), 1), Ok(()), "no REBALANCE_IN_PROGRESS for transactions");
    assert_eq!(c.validate_txn_offset_commit("old", Some("i-1"), 1), Err(E::FencedInstanceId.code()));
    assert_eq!(c.validate_txn_offset_commit(&m, Some("i-2"), 1), Err(E::UnknownMemberId.code()));
    c.kill(0);
    assert_eq!(c.validate_txn_offset_commit(&m, Some("i-1"), 1), Err(E::CoordinatorNotAvailable.code()));
}

#[test]
fn a_group_survives_its_record() {
    let l = limits(3000);
    let t0 = Instant::now();
    let (g, a, b) = stable_pair(&l, t0);
    let v = g.to_value();
    let back = ClassicGroup::from_value("g", &v, t0);
    assert_eq!((back.state, back.generation, back.leader.as_deref()), (State::Stable, 1, Some(a.as_str())));
    let ids: Vec<&str> = back.members().map(|m| m.id.as_str()).collect();
    assert!(ids.contains(&a.as_str()) && ids.contains(&b.as_str()));
    assert_eq!(back.to_value(), v, "what is loaded writes back the same record");
}
