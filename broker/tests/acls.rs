//! ACLs with Kafka's own `kafka-acls`: the ACL APIs need an authorizer
//! (SECURITY_DISABLED without one, as Kafka), bindings are added, listed
//! with filters, removed, and kept across a restart; with ACLs enforced,
//! a principal without them is refused produce, fetch and group access
//! while a super user is not. Every test passes on Apache Kafka 4.4 too
//! (`FJORD_TEST_BROKER=kafka`).
//!
//! Over PLAINTEXT every client is `User:ANONYMOUS`, so the enforcement
//! tests grant or deny ANONYMOUS; principals from TLS and SASL are tested
//! with those listeners.

mod support;

use std::time::Duration;

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
