//! ACLs with Kafka's own `kafka-acls`: the ACL APIs need an authorizer
//! (SECURITY_DISABLED without one, as Kafka), bindings are added, listed
//! with filters, removed, and kept across a restart; with ACLs enforced,
//! a principal without them is refused produce, fetch and group access
//! while a super user is not. Every test passes on Apache Kafka 4.4 too
//! (`FJORD_TEST_BROKER=kafka`).
//!
//! Over PLAINTEXT every client is `User:ANONYMOUS`, so the first
//! enforcement tests grant or deny ANONYMOUS. The later ones log in over a
//! SASL_PLAINTEXT listener as PLAIN users of their own, an `admin` super
//! user setting the scene for users with a few ACLs each, and compare the
//! exact error codes and `authorized_operations` fields with Kafka's.

mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fjord_broker::security::acl::{AclOperation as Op, AclPermissionType, PatternType, ResourceType as Rt};
use kafka_protocol::ResponseError as E;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::wire::{connect, create_topic, request};
use support::{Broker, Ran, kafka_tool, run, run_ok};

const T: Duration = Duration::from_secs(120);
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn acls(b: &Broker, args: &[&str]) -> Ran {
    run(kafka_tool("kafka-acls").args(["--bootstrap-server", &b.bootstrap()]).args(args), None, T)
}

fn acls_ok(b: &Broker, args: &[&str]) -> String {
    run_ok(kafka_tool("kafka-acls").args(["--bootstrap-server", &b.bootstrap()]).args(args), None, T)
}

/// The `(principal, host, operation, permission)` lines `--list` prints
/// under the resource named `resource` (e.g. `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`).
fn entries_of(listing: &str, resource: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in listing.lines() {
        if line.starts_with("Current ACLs for resource") {
            inside = line.contains(resource);
            continue;
        }
        let line = line.trim();
        if inside && line.starts_with("(principal=") {
            out.push(line.to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn acl_apis_need_an_authorizer() {
    let b = Broker::start();
    let ran = acls(&b, &["--list"]);
    let text = ran.text();
    assert!(text.contains("SecurityDisabledException") || text.contains("No Authorizer is configured"), "{text}");
}

#[test]
fn kafka_acls_add_list_remove_and_restart() {
    let mut b = Broker::start_with(&[("authorizer.class.name", STANDARD_AUTHORIZER), ("super.users", "User:ANONYMOUS")]);
    acls_ok(&b, &["--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "orders"]);
    acls_ok(&b, &["--add", "--deny-principal", "User:bob", "--operation", "All", "--topic", "pay", "--resource-pattern-type", "prefixed"]);
    acls_ok(&b, &["--add", "--allow-principal", "User:alice", "--operation", "Read", "--group", "g1"]);

    let all = acls_ok(&b, &["--list"]);
    let orders = "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)";
    assert_eq!(
        entries_of(&all, orders),
        [
            "(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)",
            "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"
        ],
        "--list printed:\n{all}"
    );
    let pay = "ResourcePattern(resourceType=TOPIC, name=pay, patternType=PREFIXED)";
    assert_eq!(entries_of(&all, pay), ["(principal=User:bob, host=*, operation=ALL, permissionType=DENY)"], "{all}");
    let group = "ResourcePattern(resourceType=GROUP, name=g1, patternType=LITERAL)";
    assert_eq!(entries_of(&all, group).len(), 1, "{all}");

    // A filter by topic names only that topic's literal bindings; a
    // principal filter finds alice's on both resources.
    let one = acls_ok(&b, &["--list", "--topic", "orders"]);
    assert!(one.contains(orders) && !one.contains("name=pay") && !one.contains("name=g1"), "{one}");
    let alice = acls_ok(&b, &["--list", "--principal", "User:alice"]);
    assert!(alice.contains(orders) && alice.contains(group) && !alice.contains("name=pay"), "{alice}");

    acls_ok(&b, &["--remove", "--force", "--allow-principal", "User:alice", "--operation", "Describe", "--topic", "orders"]);
    b.restart();
    let after = acls_ok(&b, &["--list"]);
    assert_eq!(entries_of(&after, orders), ["(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"], "{after}");
    assert_eq!(entries_of(&after, pay).len(), 1, "{after}");
    acls_ok(&b, &["--remove", "--force", "--topic", "pay", "--resource-pattern-type", "prefixed"]);
    let last = acls_ok(&b, &["--list"]);
    assert!(!last.contains("name=pay"), "{last}");
}

/// What a principal without ACLs on a resource gets once ACLs are
/// enforced: `secret` and `g-secret` carry ACLs for someone else only, so
/// ANONYMOUS is refused them (and Metadata hides `secret`), while `open`
/// and `g-open`, with no ACLs, stay open through
/// `allow.everyone.if.no.acl.found`. ANONYMOUS keeps the cluster's admin
/// rights by an ACL on the cluster.
const ENFORCED: &str = r#"
import sys, time
from confluent_kafka import Consumer, KafkaError, Producer
bootstrap = sys.argv[1]
probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
print("topics:" + ",".join(sorted(t for t in probe.list_topics(timeout=30).topics if not t.startswith("__"))))
probe.close()
outcome = {}
def done(err, msg):
    outcome[msg.topic()] = "ok" if err is None else err.name()
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 20000})
for topic in ("secret", "open"):
    p.produce(topic, key=b"k", value=topic.encode(), on_delivery=done)
    p.flush(30)
    print(f"produce {topic}:{outcome.get(topic, 'no answer')}")
for group in ("g-secret", "g-open"):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    c.subscribe(["open"])
    seen, deadline = "nothing", time.time() + 30
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        seen = m.error().name() if m.error() else "read " + m.value().decode()
        break
    print(f"consume {group}:{seen}")
    c.close()
"#;

#[test]
fn a_principal_without_acls_is_refused() {
    let b = Broker::start_with(&[("authorizer.class.name", STANDARD_AUTHORIZER), ("allow.everyone.if.no.acl.found", "true")]);
    for t in ["open", "secret"] {
        run_ok(kafka_tool("kafka-topics").args(["--bootstrap-server", &b.bootstrap(), "--create", "--topic", t]), None, T);
    }
    acls_ok(&b, &["--add", "--allow-principal", "User:ANONYMOUS", "--operation", "All", "--cluster"]);
    acls_ok(&b, &["--add", "--allow-principal", "User:someone", "--operation", "All", "--topic", "secret"]);
    acls_ok(&b, &["--add", "--allow-principal", "User:someone", "--operation", "All", "--group", "g-secret"]);
    let out = run_ok(support::cluster::py(ENFORCED).arg(b.bootstrap()), None, T);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "topics:open",
            "produce secret:TOPIC_AUTHORIZATION_FAILED",
            "produce open:ok",
            "consume g-secret:GROUP_AUTHORIZATION_FAILED",
            "consume g-open:read open"
        ],
        "{out}"
    );
    // Offsets of `secret` are not ANONYMOUS's to see either; the broker is
    // still up and `open` holds the one record written.
    let get_offsets =
        |topic: &str| run(kafka_tool("kafka-get-offsets").args(["--bootstrap-server", &b.bootstrap(), "--topic", topic]), None, T);
    let secret = get_offsets("secret");
    assert!(!secret.status.success() && !secret.stdout.contains("secret:0:"), "{}", secret.text());
    assert_eq!(get_offsets("open").stdout.trim(), "open:0:1");

    // Admin requests: `secret` cannot be deleted by who cannot see it
    // (kafka-topics finds no such topic); once ANONYMOUS is denied ALTER on
    // the cluster it can change no ACL, not even that one.
    let deleted = run(kafka_tool("kafka-topics").args(["--bootstrap-server", &b.bootstrap(), "--delete", "--topic", "secret"]), None, T);
    assert!(!deleted.status.success() && deleted.stdout.contains("'secret' does not exist"), "{}", deleted.text());
    acls_ok(&b, &["--add", "--deny-principal", "User:ANONYMOUS", "--operation", "Alter", "--cluster"]);
    let refused = acls(&b, &["--remove", "--force", "--deny-principal", "User:ANONYMOUS", "--operation", "Alter", "--cluster"]);
    assert!(refused.text().contains("ClusterAuthorizationException"), "{}", refused.text());
    assert!(acls_ok(&b, &["--list", "--cluster"]).contains("operation=ALTER, permissionType=DENY"));
}

// ---------------------------------------------------------------------
// Principals of their own: a SASL_PLAINTEXT listener with PLAIN users, an
// `admin` super user who sets the scene, and users whose ACLs are checked.
// Requests go over the wire (`support::wire`) so the exact error codes and
// `authorized_operations` bit fields can be compared with Kafka's.

type Login = (&'static str, &'static str);
const ADMIN: Login = ("admin", "admin-secret");
const ALICE: Login = ("alice", "alice-secret");
const BOB: Login = ("bob", "bob-secret");
const CAROL: Login = ("carol", "carol-secret");
/// The schemas' default for `authorized_operations`: not asked for, or not computed.
const NOT_REQUESTED: i32 = i32::MIN;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn bits(ops: &[Op]) -> i32 {
    ops.iter().fold(0, |b, o| b | 1 << o.code())
}

/// A broker whose client listener is SASL_PLAINTEXT (PLAIN) with ACLs on
/// and `allow.everyone.if.no.acl.found` off. Kafka's broker reaches its
/// controller over the PLAINTEXT controller listener, as ANONYMOUS, so that
/// principal is a super user too; no client is ANONYMOUS here.
fn sasl_acl_broker() -> Broker {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret" user_carol="carol-secret";"#;
    Broker::start_with(&[
        ("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ("listener.name.plaintext.plain.sasl.jaas.config", jaas),
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("super.users", "User:admin;User:ANONYMOUS"),
    ])
}

/// A connection logged in as `user` (SaslHandshake v1, SaslAuthenticate v2).
fn login(b: &Broker, (user, password): Login) -> TcpStream {
    let mut c = connect(b);
    let hs: SaslHandshakeResponse = request(&mut c, ApiKey::SaslHandshake, 1, &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")));
    assert_eq!(hs.error_code, 0, "{hs:?}");
    let token = bytes::Bytes::from(format!("\0{user}\0{password}"));
    let auth: SaslAuthenticateResponse =
        request(&mut c, ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default().with_auth_bytes(token));
    assert_eq!(auth.error_code, 0, "{user}: {auth:?}");
    c
}

/// A client properties file for the Java tools, logging in as `user`.
fn tool_config(b: &Broker, (user, password): Login) -> PathBuf {
    let path = b.data_dir().parent().unwrap().join(format!("{user}.properties"));
    std::fs::write(
        &path,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{user}\" password=\"{password}\";\n"
        ),
    )
    .unwrap();
    path
}

fn consumer_groups(b: &Broker, who: Login, args: &[&str]) -> Ran {
    let config = tool_config(b, who);
    run(
        kafka_tool("kafka-consumer-groups").args(["--bootstrap-server", &b.bootstrap(), "--command-config"]).arg(&config).args(args),
        None,
        T,
    )
}

/// ALLOW bindings `(resource type, name, pattern, principal, operation)`,
/// added by the admin; returns once the broker's authorizer holds them all
/// (DescribeAcls answers from it), since Kafka's applies them a moment after
/// CreateAcls is answered.
fn allow(admin: &mut TcpStream, acls: &[(Rt, &str, PatternType, &str, Op)]) {
    let creations = acls
        .iter()
        .map(|(rt, name, pattern, who, op)| {
            create_acls_request::AclCreation::default()
                .with_resource_type(rt.code())
                .with_resource_name(s(name))
                .with_resource_pattern_type(pattern.code())
                .with_principal(s(who))
                .with_host(s("*"))
                .with_operation(op.code())
                .with_permission_type(AclPermissionType::Allow.code())
        })
        .collect();
    let created: CreateAclsResponse = request(admin, ApiKey::CreateAcls, 3, &CreateAclsRequest::default().with_creations(creations));
    assert!(created.results.iter().all(|r| r.error_code == 0), "{created:?}");
    let wanted: usize = acls.len();
    eventually("the ACLs to apply", || {
        let mut found = 0;
        for (rt, name, pattern, who, op) in acls {
            let filter = DescribeAclsRequest::default()
                .with_resource_type_filter(rt.code())
                .with_resource_name_filter(Some(s(name)))
                .with_pattern_type_filter(pattern.code())
                .with_principal_filter(Some(s(who)))
                .with_host_filter(None)
                .with_operation(op.code())
                .with_permission_type(AclPermissionType::Allow.code());
            let listed: DescribeAclsResponse = request(admin, ApiKey::DescribeAcls, 3, &filter);
            found += usize::from(!listed.resources.is_empty());
        }
        found == wanted
    });
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "waited 30s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the group coordinator answers for `group` (Kafka creates
/// `__consumer_offsets` on the first FindCoordinator, then loads it).
fn coordinator_ready(c: &mut TcpStream, group: &str) {
    eventually("the group coordinator", || {
        let found: FindCoordinatorResponse =
            request(c, ApiKey::FindCoordinator, 3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
        found.error_code == 0 && offsets_of(c, group, None).0 == 0
    });
}

/// The admin's commit (generation -1, no member) of `offset` for each of `parts`.
fn commit(c: &mut TcpStream, group: &str, parts: &[(&str, i32, i64)]) {
    let topics = parts
        .iter()
        .map(|(t, p, o)| {
            offset_commit_request::OffsetCommitRequestTopic::default().with_name(TopicName(s(t))).with_partitions(vec![
                offset_commit_request::OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o),
            ])
        })
        .collect();
    let req = OffsetCommitRequest::default().with_group_id(GroupId(s(group))).with_generation_id_or_member_epoch(-1).with_topics(topics);
    let resp: OffsetCommitResponse = request(c, ApiKey::OffsetCommit, 9, &req);
    assert!(resp.topics.iter().flat_map(|t| &t.partitions).all(|p| p.error_code == 0), "{resp:?}");
}

/// OffsetFetch v8 for one group, of `topics` (None: all): the group's error
/// and `(topic, partition, offset, error)` sorted.
fn offsets_of(c: &mut TcpStream, group: &str, topics: Option<&[(&str, i32)]>) -> (i16, Vec<(String, i32, i64, i16)>) {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, p)| {
                offset_fetch_request::OffsetFetchRequestTopics::default().with_name(TopicName(s(t))).with_partition_indexes(vec![*p])
            })
            .collect()
    });
    let req = OffsetFetchRequest::default()
        .with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(s(group))).with_topics(topics)]);
    let resp: OffsetFetchResponse = request(c, ApiKey::OffsetFetch, 8, &req);
    let g = &resp.groups[0];
    let mut out: Vec<_> = g
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index, p.committed_offset, p.error_code)))
        .collect();
    out.sort();
    (g.error_code, out)
}

/// OffsetDelete: the top-level error and `(topic, partition, error)` sorted.
fn delete_offsets(c: &mut TcpStream, group: &str, parts: &[(&str, &[i32])]) -> (i16, Vec<(String, i32, i16)>) {
    let topics = parts
        .iter()
        .map(|(t, ps)| {
            offset_delete_request::OffsetDeleteRequestTopic::default().with_name(TopicName(s(t))).with_partitions(
                ps.iter().map(|p| offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(*p)).collect(),
            )
        })
        .collect();
    let req = OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(topics);
    let resp: OffsetDeleteResponse = request(c, ApiKey::OffsetDelete, 0, &req);
    let mut out: Vec<_> =
        resp.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), p.partition_index, p.error_code))).collect();
    out.sort();
    (resp.error_code, out)
}

/// DescribeGroups: `(group, error, state, authorized_operations)` in request order.
fn describe_groups(c: &mut TcpStream, version: i16, groups: &[&str], operations: bool) -> Vec<(String, i16, String, i32)> {
    let req = DescribeGroupsRequest::default()
        .with_groups(groups.iter().map(|g| GroupId(s(g))).collect())
        .with_include_authorized_operations(operations);
    let resp: DescribeGroupsResponse = request(c, ApiKey::DescribeGroups, version, &req);
    let mut out: Vec<_> =
        resp.groups.iter().map(|g| (g.group_id.to_string(), g.error_code, g.group_state.to_string(), g.authorized_operations)).collect();
    // Kafka answers refused groups first.
    out.sort_by_key(|(g, ..)| groups.iter().position(|x| x == g));
    out
}

fn listed_groups(c: &mut TcpStream) -> (i16, Vec<String>) {
    let resp: ListGroupsResponse = request(c, ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let mut groups: Vec<String> = resp.groups.iter().map(|g| g.group_id.to_string()).collect();
    groups.sort();
    (resp.error_code, groups)
}

/// ListGroups, OffsetDelete, OffsetFetch and DescribeGroups as Kafka
/// authorizes them: DESCRIBE on the cluster lists every group, otherwise
/// only those the principal may describe are listed (never an error);
/// OffsetDelete needs DELETE on the group and READ on each topic;
/// OffsetFetch hides or refuses topics that may not be described; and
/// `authorized_operations` says what the principal may do to each group.
#[test]
fn group_apis_follow_group_and_topic_acls() {
    let b = sasl_acl_broker();
    let mut admin = login(&b, ADMIN);
    for t in ["t-read", "t-other"] {
        create_topic(&mut admin, t);
    }
    coordinator_ready(&mut admin, "g-alice");
    commit(&mut admin, "g-alice", &[("t-read", 0, 5), ("t-other", 0, 6)]);
    commit(&mut admin, "g-other", &[("t-read", 0, 1)]);
    commit(&mut admin, "shared-1", &[("t-read", 0, 2)]);
    allow(
        &mut admin,
        &[
            (Rt::Group, "g-alice", PatternType::Literal, "User:alice", Op::Describe),
            (Rt::Group, "shared-", PatternType::Prefixed, "User:alice", Op::Read),
            (Rt::Topic, "t-read", PatternType::Literal, "User:alice", Op::Read),
            (Rt::Cluster, "kafka-cluster", PatternType::Literal, "User:bob", Op::Describe),
        ],
    );
    let all_groups = ["g-alice", "g-other", "shared-1"];

    // ListGroups: alice sees the groups she may describe (READ implies
    // DESCRIBE); bob, with DESCRIBE on the cluster, all of them; carol none,
    // and no error either.
    let list = |who: Login| {
        let ran = consumer_groups(&b, who, &["--list"]);
        assert!(ran.status.success(), "{}", ran.text());
        let mut groups: Vec<String> = ran.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        groups.sort();
        groups
    };
    assert_eq!(list(ALICE), ["g-alice", "shared-1"]);
    assert_eq!(list(BOB), all_groups);
    assert_eq!(listed_groups(&mut login(&b, CAROL)), (0, vec![]));
    assert_eq!(listed_groups(&mut admin).1, all_groups);

    let mut alice = login(&b, ALICE);
    // OffsetFetch: a topic asked for without DESCRIBE is refused, and left
    // out when all of the group's offsets are asked for.
    let (ok, taf) = (0, E::TopicAuthorizationFailed.code());
    assert_eq!(
        offsets_of(&mut alice, "g-alice", Some(&[("t-read", 0), ("t-other", 0)])),
        (0, vec![("t-other".into(), 0, -1, taf), ("t-read".into(), 0, 5, ok)])
    );
    assert_eq!(offsets_of(&mut alice, "g-alice", None), (0, vec![("t-read".into(), 0, 5, ok)]));
    assert_eq!(offsets_of(&mut alice, "g-other", None).0, E::GroupAuthorizationFailed.code());

    // DescribeGroups' authorized_operations: only for groups answered
    // without an error (a v5 unknown group is "Dead" without one).
    let gaf = E::GroupAuthorizationFailed.code();
    let group_ops = bits(&[Op::Read, Op::Describe, Op::Delete, Op::DescribeConfigs, Op::AlterConfigs]);
    assert_eq!(
        describe_groups(&mut alice, 5, &["g-alice", "g-other", "shared-9"], true),
        [
            ("g-alice".into(), 0, "Empty".into(), bits(&[Op::Describe])),
            ("g-other".into(), gaf, "".into(), NOT_REQUESTED),
            ("shared-9".into(), 0, "Dead".into(), bits(&[Op::Read, Op::Describe])),
        ]
    );
    assert_eq!(describe_groups(&mut alice, 5, &["g-alice"], false)[0].3, NOT_REQUESTED);
    let v6 = describe_groups(&mut alice, 6, &["shared-9"], true);
    assert_eq!((v6[0].1, v6[0].3), (E::GroupIdNotFound.code(), NOT_REQUESTED));
    assert_eq!(describe_groups(&mut admin, 5, &["g-alice"], true)[0].3, group_ops);

    // OffsetDelete needs DELETE on the group: without it nothing is looked at.
    assert_eq!(delete_offsets(&mut alice, "g-alice", &[("t-read", &[0])]), (gaf, vec![]));
    let refused = consumer_groups(&b, ALICE, &["--delete-offsets", "--group", "shared-1", "--topic", "t-read:0"]);
    assert!(refused.stdout.contains("Error: Group authorization failed."), "{}", refused.text());

    // With DELETE, each partition: READ on the topic, then the partition must exist.
    allow(&mut admin, &[(Rt::Group, "g-alice", PatternType::Literal, "User:alice", Op::Delete)]);
    let unknown = E::UnknownTopicOrPartition.code();
    assert_eq!(
        delete_offsets(&mut alice, "g-alice", &[("t-read", &[0, 7]), ("t-other", &[0])]),
        (0, vec![("t-other".into(), 0, taf), ("t-read".into(), 0, ok), ("t-read".into(), 7, unknown)])
    );
    assert_eq!(offsets_of(&mut admin, "g-alice", None), (0, vec![("t-other".into(), 0, 6, ok)]));
    let partly = consumer_groups(&b, ALICE, &["--delete-offsets", "--group", "g-alice", "--topic", "t-other:0"]);
    let row = partly.stdout.lines().find(|l| l.starts_with("t-other")).unwrap_or_default();
    assert!(row.contains("Topic authorization failed."), "{}", partly.text());
    assert_eq!(offsets_of(&mut admin, "g-alice", None), (0, vec![("t-other".into(), 0, 6, ok)]));
}

/// DescribeCluster: `(error, cluster_authorized_operations)`.
fn cluster_operations(c: &mut TcpStream, include: bool) -> (i16, i32) {
    let req = DescribeClusterRequest::default().with_include_cluster_authorized_operations(include).with_endpoint_type(1);
    let resp: DescribeClusterResponse = request(c, ApiKey::DescribeCluster, 1, &req);
    (resp.error_code, resp.cluster_authorized_operations)
}

/// Metadata of `topics` (no auto-creation): the cluster's operations and
/// `(topic, error, topic_authorized_operations)` in request order.
fn metadata_operations(c: &mut TcpStream, version: i16, topics: &[&str], include: bool) -> (i32, Vec<(String, i16, i32)>) {
    let req = MetadataRequest::default()
        .with_topics(Some(
            topics.iter().map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(t))))).collect(),
        ))
        .with_allow_auto_topic_creation(false)
        .with_include_cluster_authorized_operations(include && version <= 10)
        .with_include_topic_authorized_operations(include);
    let resp: MetadataResponse = request(c, ApiKey::Metadata, version, &req);
    let mut out: Vec<_> = resp
        .topics
        .iter()
        .map(|t| (t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(), t.error_code, t.topic_authorized_operations))
        .collect();
    out.sort_by_key(|(t, ..)| topics.iter().position(|x| x == t));
    (resp.cluster_authorized_operations, out)
}

/// DescribeTopicPartitions: `(topic, error, operations, has an id, partitions)` in response order.
fn topic_partitions(c: &mut TcpStream, topics: &[&str]) -> Vec<(String, i16, i32, bool, usize)> {
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(topics.iter().map(|t| describe_topic_partitions_request::TopicRequest::default().with_name(TopicName(s(t)))).collect())
        .with_response_partition_limit(2000);
    let resp: DescribeTopicPartitionsResponse = request(c, ApiKey::DescribeTopicPartitions, 0, &req);
    resp.topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            (name, t.error_code, t.topic_authorized_operations, !t.topic_id.is_nil(), t.partitions.len())
        })
        .collect()
}

/// OffsetForLeaderEpoch v4 for partition 0 of each topic: `(topic, error)` sorted.
fn epoch_ends(c: &mut TcpStream, topics: &[&str]) -> Vec<(String, i16)> {
    let req = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(
        topics
            .iter()
            .map(|t| {
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(TopicName(s(t))).with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                ])
            })
            .collect(),
    );
    let resp: OffsetForLeaderEpochResponse = request(c, ApiKey::OffsetForLeaderEpoch, 4, &req);
    let mut out: Vec<_> = resp.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), p.error_code))).collect();
    out.sort();
    out
}

/// DescribeConfigs v4 of `(resource type, name)`: `(type, name, error, message)` sorted.
fn describe_configs(c: &mut TcpStream, resources: &[(i8, &str)]) -> Vec<(i8, String, i16, String)> {
    let req = DescribeConfigsRequest::default().with_resources(
        resources
            .iter()
            .map(|(rt, name)| {
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(*rt)
                    .with_resource_name(s(name))
                    .with_configuration_keys(Some(vec![]))
            })
            .collect(),
    );
    let resp: DescribeConfigsResponse = request(c, ApiKey::DescribeConfigs, 4, &req);
    let mut out: Vec<_> = resp
        .results
        .iter()
        .map(|r| {
            let message = if r.error_code == 0 { String::new() } else { r.error_message.as_deref().unwrap_or("").to_string() };
            (r.resource_type, r.resource_name.to_string(), r.error_code, message)
        })
        .collect();
    out.sort();
    out
}

/// The cluster and topic side: DescribeCluster answers everyone and
/// reports the cluster's operations only to who may describe it; Metadata
/// and DescribeTopicPartitions report each topic's operations; and the
/// APIs Kafka guards that Fjord had left open: OffsetForLeaderEpoch
/// (DESCRIBE on the topic), DescribeClientQuotas (DESCRIBE_CONFIGS on the
/// cluster), DescribeConfigs of loggers and groups, the configs CreateTopics
/// returns (DESCRIBE_CONFIGS on the topic), group configs' changes and
/// DeleteTopics by id or with DELETE on the cluster.
#[test]
fn cluster_and_topic_apis_follow_acls() {
    let b = sasl_acl_broker();
    let mut admin = login(&b, ADMIN);
    for t in ["t-read", "t-other"] {
        create_topic(&mut admin, t);
    }
    allow(
        &mut admin,
        &[
            (Rt::Topic, "t-read", PatternType::Literal, "User:alice", Op::Read),
            (Rt::Topic, "a-new", PatternType::Literal, "User:alice", Op::Create),
            (Rt::Cluster, "kafka-cluster", PatternType::Literal, "User:bob", Op::Describe),
            (Rt::Cluster, "kafka-cluster", PatternType::Literal, "User:bob", Op::AlterConfigs),
        ],
    );
    let (mut alice, mut bob) = (login(&b, ALICE), login(&b, BOB));
    let (taf, caf, gaf) = (E::TopicAuthorizationFailed.code(), E::ClusterAuthorizationFailed.code(), E::GroupAuthorizationFailed.code());
    let all_cluster =
        bits(&[Op::Create, Op::Alter, Op::Describe, Op::ClusterAction, Op::DescribeConfigs, Op::AlterConfigs, Op::IdempotentWrite]);
    let all_topic = bits(&[Op::Read, Op::Write, Op::Create, Op::Delete, Op::Alter, Op::Describe, Op::DescribeConfigs, Op::AlterConfigs]);
    let read = bits(&[Op::Read, Op::Describe]);
    // ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    let bob_cluster = bits(&[Op::Describe, Op::AlterConfigs, Op::DescribeConfigs]);

    // DescribeCluster is never refused; operations need DESCRIBE on the cluster.
    assert_eq!(cluster_operations(&mut admin, true), (0, all_cluster));
    assert_eq!(cluster_operations(&mut bob, true), (0, bob_cluster));
    assert_eq!(cluster_operations(&mut alice, true), (0, 0));
    assert_eq!(cluster_operations(&mut alice, false), (0, NOT_REQUESTED));

    // Metadata: topic operations for the topics looked up (an unknown one
    // too), none for refused ones; the cluster's at v8-10 only.
    let unknown = E::UnknownTopicOrPartition.code();
    assert_eq!(
        metadata_operations(&mut alice, 10, &["t-read", "t-other"], true),
        (0, vec![("t-read".into(), 0, read), ("t-other".into(), taf, NOT_REQUESTED)])
    );
    assert_eq!(metadata_operations(&mut bob, 9, &["t-read"], true), (bob_cluster, vec![("t-read".into(), taf, NOT_REQUESTED)]));
    assert_eq!(
        metadata_operations(&mut admin, 12, &["t-read", "no-such"], true),
        (NOT_REQUESTED, vec![("t-read".into(), 0, all_topic), ("no-such".into(), unknown, all_topic)])
    );
    assert_eq!(metadata_operations(&mut alice, 12, &["t-read"], false), (NOT_REQUESTED, vec![("t-read".into(), 0, NOT_REQUESTED)]));

    // DescribeTopicPartitions: a refused topic comes after the others,
    // without its id, partitions or operations.
    assert_eq!(
        topic_partitions(&mut alice, &["t-other", "t-read"]),
        [("t-read".into(), 0, read, true, 1), ("t-other".into(), taf, NOT_REQUESTED, false, 0)]
    );
    let everything = topic_partitions(&mut alice, &[]);
    assert_eq!(everything, [("t-read".into(), 0, read, true, 1)]);

    // OffsetForLeaderEpoch: DESCRIBE on the topic, or CLUSTER_ACTION (the admin's).
    assert_eq!(epoch_ends(&mut alice, &["t-read", "t-other"]), [("t-other".into(), taf), ("t-read".into(), 0)]);
    assert_eq!(epoch_ends(&mut admin, &["t-read", "t-other"]), [("t-other".into(), 0), ("t-read".into(), 0)]);

    // DescribeClientQuotas: DESCRIBE_CONFIGS on the cluster, or no entries at all.
    let quotas = |c: &mut TcpStream| -> DescribeClientQuotasResponse {
        request(c, ApiKey::DescribeClientQuotas, 1, &DescribeClientQuotasRequest::default())
    };
    let refused = quotas(&mut alice);
    assert_eq!((refused.error_code, refused.error_message.as_deref(), refused.entries), (caf, None, None));
    let answered = quotas(&mut bob);
    assert_eq!((answered.error_code, answered.entries), (0, Some(vec![])));

    // DescribeConfigs: brokers and loggers need DESCRIBE_CONFIGS on the
    // cluster, groups on the group, topics on the topic.
    let (topic, broker, logger, group) = (2, 4, 8, 32);
    assert_eq!(
        describe_configs(&mut alice, &[(topic, "t-read"), (broker, "1"), (logger, "1"), (group, "g")]),
        [
            (topic, "t-read".into(), taf, "Topic authorization failed.".into()),
            (broker, "1".into(), caf, "Cluster authorization failed.".into()),
            (logger, "1".into(), caf, "Cluster authorization failed.".into()),
            (group, "g".into(), gaf, "Group authorization failed.".into()),
        ]
    );
    assert_eq!(describe_configs(&mut bob, &[(logger, "1")]), [(logger, "1".into(), 0, String::new())]);

    // CreateTopics: the topic is created, but its configs are shown only
    // with DESCRIBE_CONFIGS on it (KIP-525).
    let create = |c: &mut TcpStream, name: &str| {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ])
            .with_timeout_ms(30_000);
        let resp: CreateTopicsResponse = request(c, ApiKey::CreateTopics, 7, &req);
        let t = &resp.topics[0];
        (t.error_code, t.topic_config_error_code, t.num_partitions, t.replication_factor, t.configs.as_ref().map_or(0, Vec::len))
    };
    assert_eq!(create(&mut alice, "a-new"), (0, taf, -1, -1, 0));
    let (error, config_error, partitions, replication, configs) = create(&mut admin, "b-new");
    assert_eq!((error, config_error, partitions, replication), (0, 0, 1, 1));
    assert!(configs > 0);

    // A group's configs are changed with ALTER_CONFIGS on the group, not the cluster.
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(group)
            .with_resource_name(s("g"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("consumer.session.timeout.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("50000"))),
            ]),
    ]);
    for c in [&mut alice, &mut bob] {
        let altered: IncrementalAlterConfigsResponse = request(c, ApiKey::IncrementalAlterConfigs, 1, &alter);
        assert_eq!(altered.responses[0].error_code, gaf, "{altered:?}");
    }

    // DeleteTopics: a topic given by id is refused without its name unless
    // the principal may describe it; DELETE on the cluster covers every topic.
    let ids: MetadataResponse = request(&mut admin, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    let id = |name: &str| ids.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name)).expect("topic listed").topic_id;
    let delete = |c: &mut TcpStream, topics: &[(Option<&str>, uuid::Uuid)]| {
        let req = DeleteTopicsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|(name, id)| {
                        delete_topics_request::DeleteTopicState::default().with_name(name.map(|n| TopicName(s(n)))).with_topic_id(*id)
                    })
                    .collect(),
            )
            .with_timeout_ms(30_000);
        let resp: DeleteTopicsResponse = request(c, ApiKey::DeleteTopics, 6, &req);
        let mut out: Vec<(Option<String>, i16)> =
            resp.responses.iter().map(|r| (r.name.as_ref().map(|n| n.to_string()), r.error_code)).collect();
        out.sort();
        out
    };
    assert_eq!(delete(&mut alice, &[(None, id("t-read")), (None, id("t-other"))]), [(None, taf), (Some("t-read".into()), taf)]);
    assert_eq!(delete(&mut bob, &[(Some("b-new"), uuid::Uuid::nil())]), [(Some("b-new".into()), taf)]);
    allow(&mut admin, &[(Rt::Cluster, "kafka-cluster", PatternType::Literal, "User:bob", Op::Delete)]);
    assert_eq!(delete(&mut bob, &[(Some("b-new"), uuid::Uuid::nil())]), [(Some("b-new".into()), 0)]);
}
