//! The group APIs on the wire, request by request, with the error codes
//! Kafka answers. Runs against Apache Kafka too (`FJORD_TEST_BROKER=kafka`),
//! which is where the expected codes come from.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::Broker;
use support::wire::{connect, create_topic, request};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

fn start() -> Broker {
    // No initial delay, so a lone member's join completes at once.
    Broker::start_with(&[("group.initial.rebalance.delay.ms", "0")])
}

/// FindCoordinator until the coordinator is ready (Kafka answers
/// COORDINATOR_NOT_AVAILABLE while it creates `__consumer_offsets`).
fn find_coordinator(c: &mut TcpStream, group: &str) -> FindCoordinatorResponse {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp: FindCoordinatorResponse =
            request(c, ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
        if resp.error_code == 0 {
            // Kafka loads the partition after naming it: wait until it answers for the group.
            while fetch_all(c, group).0 != 0 {
                assert!(Instant::now() < deadline, "coordinator never loaded");
                std::thread::sleep(Duration::from_millis(200));
            }
            return resp;
        }
        assert_eq!(resp.error_code, E::CoordinatorNotAvailable.code(), "{resp:?}");
        assert!(Instant::now() < deadline, "no coordinator: {resp:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn join(c: &mut TcpStream, group: &str, member: &str, session_ms: i32) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(Bytes::from_static(b"sub"))]);
    request(c, ApiKey::JoinGroup, 9, &req)
}

fn heartbeat(c: &mut TcpStream, group: &str, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default().with_group_id(gid(group)).with_member_id(s(member)).with_generation_id(generation);
    let resp: HeartbeatResponse = request(c, ApiKey::Heartbeat, 4, &req);
    resp.error_code
}

fn commit(c: &mut TcpStream, version: i16, group: &str, member: &str, generation: i32, parts: &[(&str, i32, i64, &str)]) -> Vec<i16> {
    // One entry per topic, its partitions in request order.
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o, m) in parts {
        let partition =
            OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o).with_committed_metadata(Some(s(m)));
        match topics.iter_mut().find(|e| e.name.as_str() == *t) {
            Some(e) => e.partitions.push(partition),
            None => topics.push(OffsetCommitRequestTopic::default().with_name(TopicName(s(t))).with_partitions(vec![partition])),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics);
    let resp: OffsetCommitResponse = request(c, ApiKey::OffsetCommit, version, &req);
    // Kafka answers unknown topics first: match by topic and partition, in request order.
    parts
        .iter()
        .map(|(t, p, _, _)| {
            let topic = resp.topics.iter().find(|rt| rt.name.as_str() == *t).expect("topic answered");
            topic.partitions.iter().find(|rp| rp.partition_index == *p).expect("partition answered").error_code
        })
        .collect()
}

/// All committed offsets of `group` (v8, topics null): (topic, partition, offset, metadata).
fn fetch_all(c: &mut TcpStream, group: &str) -> (i16, Vec<(String, i32, i64, String)>) {
    let req =
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default().with_group_id(gid(group)).with_topics(None)]);
    let resp: OffsetFetchResponse = request(c, ApiKey::OffsetFetch, 8, &req);
    let g = &resp.groups[0];
    let mut out: Vec<_> = g
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.committed_offset, p.metadata.as_deref().unwrap_or("").to_string()))
        })
        .collect();
    out.sort();
    (g.error_code, out)
}

fn describe(c: &mut TcpStream, version: i16, group: &str) -> describe_groups_response::DescribedGroup {
    let resp: DescribeGroupsResponse =
        request(c, ApiKey::DescribeGroups, version, &DescribeGroupsRequest::default().with_groups(vec![gid(group)]));
    resp.groups.into_iter().next().expect("one group")
}

fn delete_group(c: &mut TcpStream, group: &str) -> i16 {
    let resp: DeleteGroupsResponse =
        request(c, ApiKey::DeleteGroups, 2, &DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]));
    resp.results[0].error_code
}

#[test]
fn a_member_goes_through_join_sync_commit_and_leave() {
    let b = start();
    let mut c = connect(&b);
    create_topic(&mut c, "wire-t");
    let g = "wire-group";
    find_coordinator(&mut c, g);
    let batched: FindCoordinatorResponse = request(
        &mut c,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s(g), s("other-group")]),
    );
    assert_eq!(batched.coordinators.len(), 2, "{batched:?}");
    assert!(batched.coordinators.iter().all(|c| c.error_code == 0 && c.port > 0), "{batched:?}");

    let first = join(&mut c, g, "", 10_000);
    assert_eq!(first.error_code, E::MemberIdRequired.code(), "v4+ joins get a member id first: {first:?}");
    let id = first.member_id.to_string();
    assert!(id.starts_with("wire-test-"), "member ids start with the client id: {id}");
    let joined = join(&mut c, g, &id, 10_000);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1), "{joined:?}");
    assert_eq!((joined.leader.as_str(), joined.members.len()), (id.as_str(), 1));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(&joined.members[0].metadata[..], b"sub");

    assert_eq!(heartbeat(&mut c, g, &id, 1), 0, "heartbeats are fine while the leader assigns");
    assert_eq!(heartbeat(&mut c, g, &id, 2), E::IllegalGeneration.code());
    assert_eq!(heartbeat(&mut c, g, "someone-else", 1), E::UnknownMemberId.code());
    assert_eq!(commit(&mut c, 8, g, &id, 1, &[("wire-t", 0, 1, "")]), vec![E::RebalanceInProgress.code()]);

    let sync = SyncGroupRequest::default()
        .with_group_id(gid(g))
        .with_generation_id(1)
        .with_member_id(s(&id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![
            SyncGroupRequestAssignment::default().with_member_id(s(&id)).with_assignment(Bytes::from_static(&[1, 2, 3])),
        ]);
    let synced: SyncGroupResponse = request(&mut c, ApiKey::SyncGroup, 5, &sync);
    assert_eq!((synced.error_code, &synced.assignment[..]), (0, &[1u8, 2, 3][..]), "{synced:?}");
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));

    assert_eq!(
        commit(&mut c, 8, g, &id, 1, &[("wire-t", 0, 42, "meta"), ("wire-t", 99, 1, ""), ("no-such-topic", 0, 1, "")]),
        vec![0, E::UnknownTopicOrPartition.code(), E::UnknownTopicOrPartition.code()]
    );
    assert_eq!(fetch_all(&mut c, g), (0, vec![("wire-t".into(), 0, 42, "meta".into())]));

    let d = describe(&mut c, 5, g);
    assert_eq!(
        (d.error_code, d.group_state.as_str(), d.protocol_type.as_str(), d.protocol_data.as_str()),
        (0, "Stable", "consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!((d.members[0].member_id.as_str(), d.members[0].client_id.as_str()), (id.as_str(), "wire-test"));
    assert_eq!(&d.members[0].member_assignment[..], &[1, 2, 3]);
    assert!(d.members[0].client_host.starts_with('/'), "Kafka prints the host as InetAddress does: {:?}", d.members[0].client_host);
    assert_eq!(delete_group(&mut c, g), E::NonEmptyGroup.code());

    let leave = LeaveGroupRequest::default().with_group_id(gid(g)).with_members(vec![MemberIdentity::default().with_member_id(s(&id))]);
    let left: LeaveGroupResponse = request(&mut c, ApiKey::LeaveGroup, 5, &leave);
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0), "{left:?}");
    assert_eq!(describe(&mut c, 5, g).group_state.as_str(), "Empty");
    assert_eq!(heartbeat(&mut c, g, &id, 1), E::UnknownMemberId.code());

    let od = OffsetDeleteRequest::default().with_group_id(gid(g)).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("wire-t")))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let od: OffsetDeleteResponse = request(&mut c, ApiKey::OffsetDelete, 0, &od);
    assert_eq!((od.error_code, od.topics[0].partitions[0].error_code), (0, 0), "{od:?}");
    assert_eq!(fetch_all(&mut c, g), (0, vec![]));

    assert_eq!(delete_group(&mut c, g), 0);
    assert_eq!(delete_group(&mut c, g), E::GroupIdNotFound.code());
    let gone = describe(&mut c, 5, g);
    assert_eq!((gone.error_code, gone.group_state.as_str()), (0, "Dead"));
    let gone = describe(&mut c, 6, g);
    assert_eq!((gone.error_code, gone.group_state.as_str()), (E::GroupIdNotFound.code(), "Dead"));
}

#[test]
fn admin_commits_and_refusals() {
    let b = start();
    let mut c = connect(&b);
    create_topic(&mut c, "wire-admin");
    let g = "wire-admin-group";
    find_coordinator(&mut c, g);

    assert_eq!(join(&mut c, g, "", 1000).error_code, E::InvalidSessionTimeout.code(), "below group.min.session.timeout.ms");
    assert_eq!(join(&mut c, "", "", 10_000).error_code, E::InvalidGroupId.code());
    let sync = SyncGroupRequest::default().with_group_id(gid(g)).with_generation_id(1).with_member_id(s("x"));
    let synced: SyncGroupResponse = request(&mut c, ApiKey::SyncGroup, 5, &sync);
    assert_eq!(synced.error_code, E::InconsistentGroupProtocol.code(), "v5 must name the protocol");
    let sync = sync.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")));
    let synced: SyncGroupResponse = request(&mut c, ApiKey::SyncGroup, 5, &sync);
    assert_eq!(synced.error_code, E::UnknownMemberId.code());

    // A member's commit to a group that does not exist.
    assert_eq!(commit(&mut c, 9, g, "x", 3, &[("wire-admin", 0, 5, "")]), vec![E::GroupIdNotFound.code()]);
    assert_eq!(commit(&mut c, 8, g, "x", 3, &[("wire-admin", 0, 5, "")]), vec![E::IllegalGeneration.code()]);
    // Nothing committed, an unknown group: -1 and no error.
    assert_eq!(fetch_all(&mut c, g), (0, vec![]));
    let v7 = OffsetFetchRequest::default().with_group_id(gid(g)).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default().with_name(TopicName(s("wire-admin"))).with_partition_indexes(vec![0]),
    ]));
    let v7: OffsetFetchResponse = request(&mut c, ApiKey::OffsetFetch, 7, &v7);
    assert_eq!((v7.error_code, v7.topics[0].partitions[0].committed_offset), (0, -1), "{v7:?}");

    // The admin's (and assign()'s) commit: generation -1, no member.
    let long = "m".repeat(4097);
    assert_eq!(commit(&mut c, 9, g, "", -1, &[("wire-admin", 0, 7, "ok")]), vec![0]);
    assert_eq!(commit(&mut c, 9, g, "", -1, &[("wire-admin", 0, 8, &long)]), vec![E::OffsetMetadataTooLarge.code()]);
    assert_eq!(fetch_all(&mut c, g), (0, vec![("wire-admin".into(), 0, 7, "ok".into())]));
    let listed: ListGroupsResponse = request(&mut c, ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let mine = listed.groups.iter().find(|l| l.group_id.as_str() == g).expect("the committing group is listed");
    assert_eq!((mine.group_state.as_str(), mine.protocol_type.as_str()), ("Empty", ""));
    let stable_only: ListGroupsResponse =
        request(&mut c, ApiKey::ListGroups, 5, &ListGroupsRequest::default().with_states_filter(vec![s("stable")]));
    assert!(stable_only.groups.iter().all(|l| l.group_id.as_str() != g), "{stable_only:?}");

    // A member may join the group that so far only committed.
    let first = join(&mut c, g, "", 10_000);
    let joined = join(&mut c, g, &first.member_id, 10_000);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1), "{joined:?}");
    // The admin cannot commit for a group with members.
    assert_eq!(commit(&mut c, 9, g, "", -1, &[("wire-admin", 0, 9, "")]), vec![E::UnknownMemberId.code()]);
}

#[test]
fn expired_offsets_are_deleted_and_their_empty_group_with_them() {
    let b = Broker::start_with(&[("group.initial.rebalance.delay.ms", "0"), ("offsets.retention.check.interval.ms", "500")]);
    let mut c = connect(&b);
    create_topic(&mut c, "wire-expiry");
    let g = "wire-expiry-group";
    find_coordinator(&mut c, g);
    // OffsetCommit v2-4 carry a retention time: it sets the commit's own expiry.
    let commit_v2 = |c: &mut TcpStream, retention_ms: i64| {
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(g))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(retention_ms)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("wire-expiry")))
                    .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3)]),
            ]);
        let resp: OffsetCommitResponse = request(c, ApiKey::OffsetCommit, 2, &req);
        resp.topics[0].partitions[0].error_code
    };
    assert_eq!(commit_v2(&mut c, 1000), 0);
    assert_eq!(fetch_all(&mut c, g).1.len(), 1, "committed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fetch_all(&mut c, g).1.is_empty() {
        assert!(Instant::now() < deadline, "the offset never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The group had nothing else: it goes too.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed: ListGroupsResponse = request(&mut c, ApiKey::ListGroups, 5, &ListGroupsRequest::default());
        if listed.groups.iter().all(|l| l.group_id.as_str() != g) {
            break;
        }
        assert!(Instant::now() < deadline, "the emptied group is still listed: {listed:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A commit with the default retention (7 days) stays.
    assert_eq!(commit_v2(&mut c, -1), 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(fetch_all(&mut c, g).1.len(), 1, "kept");
}

#[test]
fn a_deleted_topic_takes_its_committed_offsets_along() {
    let b = start();
    let mut c = connect(&b);
    create_topic(&mut c, "wire-doomed");
    create_topic(&mut c, "wire-kept");
    let g = "wire-deleting-group";
    find_coordinator(&mut c, g);
    assert_eq!(commit(&mut c, 9, g, "", -1, &[("wire-doomed", 0, 11, ""), ("wire-kept", 0, 12, "")]), vec![0, 0]);
    let delete = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("wire-doomed"))]).with_timeout_ms(30_000);
    let deleted: DeleteTopicsResponse = request(&mut c, ApiKey::DeleteTopics, 5, &delete);
    assert_eq!(deleted.responses[0].error_code, 0, "{deleted:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, offsets) = fetch_all(&mut c, g);
        if offsets == vec![("wire-kept".to_string(), 0, 12, String::new())] {
            break;
        }
        assert!(Instant::now() < deadline, "the deleted topic's offset is still there: {offsets:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
