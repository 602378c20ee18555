//! SASL over a SASL_PLAINTEXT listener with real clients: SCRAM users made
//! by `kafka-configs` (AlterUserScramCredentials, kept in the cluster
//! metadata), PLAIN users from the listener's JAAS config; Java tools,
//! librdkafka (confluent-kafka) and kafka-python produce and consume; wrong
//! passwords, unknown users and an unsupported mechanism are refused with
//! Kafka's errors, get no data, and the broker stays up without a password
//! in its log. `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.
//!
//! The harness's listener (named PLAINTEXT) is mapped to SASL_PLAINTEXT, so
//! the admin (a PLAIN user) creates the SCRAM users over SASL, as one does
//! on a cluster whose only client listener is SASL.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use support::cluster::py;
use support::wire::{closed, connect, request, send_request};
use support::{Broker, api_versions_answered, kafka_tool, run, run_ok};

const T: Duration = Duration::from_secs(120);
const SECRETS: [&str; 4] = ["admin-secret", "alice-secret", "bob-secret", "wrong-secret"];

fn jaas_plain() -> String {
    r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_carol="carol-pw";"#.into()
}

/// A broker whose one client listener is SASL_PLAINTEXT with `mechanisms`.
fn sasl_broker(mechanisms: &str, extra: &[(&str, &str)]) -> Broker {
    let plain = jaas_plain();
    let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_string();
    let mut o: Vec<(&str, &str)> = vec![
        ("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("sasl.enabled.mechanisms", mechanisms),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        ("listener.name.plaintext.plain.sasl.jaas.config", &plain),
        ("listener.name.plaintext.scram-sha-256.sasl.jaas.config", &scram),
        ("listener.name.plaintext.scram-sha-512.sasl.jaas.config", &scram),
    ];
    o.extend_from_slice(extra);
    Broker::start_with(&o)
}

/// A client properties file for the Java tools.
fn java_config(b: &Broker, name: &str, mechanism: &str, user: &str, password: &str) -> PathBuf {
    let module = if mechanism == "PLAIN" { "plain.PlainLoginModule" } else { "scram.ScramLoginModule" };
    let path = b.data_dir().parent().unwrap().join(format!("{name}.properties"));
    fs::write(
        &path,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n\
             sasl.jaas.config=org.apache.kafka.common.security.{module} required username=\"{user}\" password=\"{password}\";\n"
        ),
    )
    .unwrap();
    path
}

fn tool(b: &Broker, name: &str, config: &PathBuf, args: &[&str]) -> Command {
    let mut cmd = kafka_tool(name);
    cmd.args(["--bootstrap-server", &b.bootstrap(), "--command-config"]).arg(config).args(args);
    cmd
}

/// Adds a SCRAM credential with `kafka-configs`, as the admin.
fn add_scram_user(b: &Broker, admin: &PathBuf, mechanism: &str, user: &str, password: &str) {
    let config = format!("{mechanism}=[password={password}]");
    let out = run_ok(
        &mut tool(b, "kafka-configs", admin, &["--alter", "--add-config", &config, "--entity-type", "users", "--entity-name", user]),
        None,
        T,
    );
    assert!(out.contains(&format!("Completed updating config for user {user}")), "{out}");
}

/// Produces or consumes with confluent-kafka (librdkafka) or kafka-python
/// over SASL; prints the records, or `AUTH-ERROR <text>` and exits 3.
const CLIENT: &str = r#"
import logging, sys, time
lib, action, bootstrap, topic, mechanism, user, password, count = sys.argv[1:9]
count = int(count)
if lib == "confluent":
    from confluent_kafka import Consumer, Producer, TopicPartition
    errors = []
    conf = {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password, "error_cb": lambda e: errors.append(str(e))}
    def check():
        bad = [e for e in errors if "SASL" in e or "uthentication" in e]
        if bad:
            print("AUTH-ERROR " + " | ".join(bad)); sys.exit(3)
    if action == "produce":
        p = Producer(dict(conf, acks="all", **{"message.timeout.ms": 20000}))
        acked = []
        for i in range(count):
            p.produce(topic, key=f"k{i}", value=f"{user}-{i}", partition=0,
                      on_delivery=lambda err, m: acked.append((err, m)))
        deadline = time.time() + 30
        while len(acked) < count and time.time() < deadline:
            p.poll(0.2); check()
        check()
        for err, m in acked:
            if err: print("DELIVERY-ERROR", err); sys.exit(1)
            print(m.partition(), m.offset(), m.key().decode(), m.value().decode(), sep="\t")
    else:
        c = Consumer(dict(conf, **{"group.id": "sasl-test", "enable.auto.commit": False}))
        c.assign([TopicPartition(topic, 0, 0)])
        got, deadline = 0, time.time() + 30
        while got < count and time.time() < deadline:
            m = c.poll(0.5); check()
            if m is None or m.error(): continue
            print(m.partition(), m.offset(), (m.key() or b"-").decode(), m.value().decode(), sep="\t"); got += 1
        c.close()
else:
    import io
    log = io.StringIO()
    logging.basicConfig(stream=log, level=logging.ERROR)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    # A refused login is logged at once, but kafka-python keeps retrying the
    # bootstrap for bootstrap_timeout_ms (30 s by default) before it gives up.
    conf = dict(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username=user, sasl_plain_password=password, bootstrap_timeout_ms=6000)
    try:
        if action == "produce":
            p = KafkaProducer(acks="all", **conf)
            for i in range(count):
                m = p.send(topic, key=f"k{i}".encode(), value=f"{user}-{i}".encode(), partition=0).get(timeout=30)
                print(m.partition, m.offset, f"k{i}", f"{user}-{i}", sep="\t")
            p.close()
        else:
            c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=10000, **conf)
            c.assign([TopicPartition(topic, 0)]); c.seek(TopicPartition(topic, 0), 0)
            got = 0
            for m in c:
                print(m.partition, m.offset, (m.key or b"-").decode(), m.value.decode(), sep="\t"); got += 1
                if got == count: break
            c.close()
    except Exception as e:
        print("AUTH-ERROR", type(e).__name__, e, log.getvalue().replace("\n", " | ")); sys.exit(3)
"#;

/// How a client logs in: mechanism, user, password.
type Login<'a> = (&'a str, &'a str, &'a str);

fn client(lib: &str, action: &str, b: &Broker, topic: &str, (mechanism, user, password): Login<'_>, count: usize) -> support::Ran {
    let count = count.to_string();
    run(py(CLIENT).args([lib, action, &b.bootstrap(), topic, mechanism, user, password, &count]), None, T)
}

/// `partition offset key value` lines, as (offset, value).
fn records(out: &str) -> Vec<(i64, String)> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() == 4).then(|| (f[1].parse().unwrap(), f[3].to_string()))
        })
        .collect()
}

fn produce_and_consume(lib: &str, b: &Broker, topic: &str, mechanism: &str, user: &str, password: &str, from: i64) {
    let ran = client(lib, "produce", b, topic, (mechanism, user, password), 5);
    assert!(ran.status.success(), "{lib} {mechanism} produce as {user}:\n{}", ran.text());
    let want: Vec<(i64, String)> = (0..5).map(|i| (from + i, format!("{user}-{i}"))).collect();
    assert_eq!(records(&ran.stdout), want, "{lib} {mechanism}: acknowledged offsets");
    let ran = client(lib, "consume", b, topic, (mechanism, user, password), (from + 5) as usize);
    assert!(ran.status.success(), "{lib} {mechanism} consume as {user}:\n{}", ran.text());
    let read = records(&ran.stdout);
    assert_eq!(read.len(), (from + 5) as usize, "{lib} {mechanism}: read back\n{}", ran.text());
    assert_eq!(&read[from as usize..], &want[..], "{lib} {mechanism}: read back");
}

fn assert_refused(ran: &support::Ran, what: &str, expected: &str) {
    assert!(!ran.status.success(), "{what}: the client succeeded:\n{}", ran.text());
    let text = format!("{}{}", ran.stdout, ran.stderr);
    assert!(text.contains(expected), "{what}: expected {expected:?} in the client's output:\n{}", ran.text());
    assert!(records(&ran.stdout).is_empty(), "{what}: the client got data:\n{}", ran.text());
}

fn assert_up_and_quiet(b: &mut Broker) {
    assert!(b.is_running(), "the broker exited");
    let port: u16 = b.bootstrap().rsplit(':').next().unwrap().parse().unwrap();
    assert!(api_versions_answered(port), "the broker stopped answering");
    let log = fs::read_to_string(b.log_path()).unwrap();
    for secret in SECRETS {
        assert!(!log.contains(secret), "the broker log shows the password {secret:?}");
    }
}

fn end_offset(b: &Broker, admin: &PathBuf, topic: &str) -> i64 {
    let out = run_ok(&mut tool(b, "kafka-get-offsets", admin, &["--topic", topic, "--time", "-1"]), None, T);
    out.lines().filter_map(|l| l.rsplit(':').next()?.trim().parse::<i64>().ok()).sum()
}

#[test]
fn scram_users_from_kafka_configs_produce_and_consume_with_java_librdkafka_and_kafka_python() {
    let mut b = sasl_broker("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", &[]);
    let admin = java_config(&b, "admin", "PLAIN", "admin", "admin-secret");
    add_scram_user(&b, &admin, "SCRAM-SHA-512", "alice", "alice-secret");
    add_scram_user(&b, &admin, "SCRAM-SHA-256", "bob", "bob-secret");
    let described = run_ok(&mut tool(&b, "kafka-configs", &admin, &["--describe", "--entity-type", "users"]), None, T);
    for line in [
        "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-512=iterations=4096",
        "SCRAM credential configs for user-principal 'bob' are SCRAM-SHA-256=iterations=4096",
    ] {
        assert!(described.contains(line), "expected {line:?} in:\n{described}");
    }
    run_ok(&mut tool(&b, "kafka-topics", &admin, &["--create", "--topic", "scram", "--partitions", "1"]), None, T);

    // Java: console producer and consumer as alice with SCRAM-SHA-512.
    let alice = java_config(&b, "alice", "SCRAM-SHA-512", "alice", "alice-secret");
    run_ok(&mut tool(&b, "kafka-console-producer", &alice, &["--topic", "scram"]), Some(b"j0\nj1\nj2\n"), T);
    let read = run_ok(
        &mut tool(
            &b,
            "kafka-console-consumer",
            &alice,
            &["--topic", "scram", "--from-beginning", "--max-messages", "3", "--timeout-ms", "30000"],
        ),
        None,
        T,
    );
    assert_eq!(read.lines().collect::<Vec<_>>(), ["j0", "j1", "j2"]);
    let mut next = 3;
    for lib in ["confluent", "kafka-python"] {
        produce_and_consume(lib, &b, "scram", "SCRAM-SHA-512", "alice", "alice-secret", next);
        produce_and_consume(lib, &b, "scram", "SCRAM-SHA-256", "bob", "bob-secret", next + 5);
        next += 10;
    }
    assert_eq!(end_offset(&b, &admin, "scram"), next);

    // A deleted credential no longer logs in.
    run_ok(
        &mut tool(
            &b,
            "kafka-configs",
            &admin,
            &["--alter", "--delete-config", "SCRAM-SHA-256", "--entity-type", "users", "--entity-name", "bob"],
        ),
        None,
        T,
    );
    let ran = client("confluent", "produce", &b, "scram", ("SCRAM-SHA-256", "bob", "bob-secret"), 1);
    assert_refused(
        &ran,
        "deleted credential",
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256",
    );
    assert_eq!(end_offset(&b, &admin, "scram"), next);
    assert_up_and_quiet(&mut b);
}

#[test]
fn plain_users_from_the_jaas_config() {
    let mut b = sasl_broker("PLAIN", &[]);
    let admin = java_config(&b, "admin", "PLAIN", "admin", "admin-secret");
    run_ok(&mut tool(&b, "kafka-topics", &admin, &["--create", "--topic", "plain", "--partitions", "1"]), None, T);
    produce_and_consume("confluent", &b, "plain", "PLAIN", "carol", "carol-pw", 0);
    produce_and_consume("kafka-python", &b, "plain", "PLAIN", "carol", "carol-pw", 5);
    let carol = java_config(&b, "carol", "PLAIN", "carol", "carol-pw");
    let listed = run_ok(&mut tool(&b, "kafka-topics", &carol, &["--list"]), None, T);
    assert!(listed.lines().any(|l| l == "plain"), "{listed}");
    assert_up_and_quiet(&mut b);
}

#[test]
fn wrong_password_unknown_user_and_unsupported_mechanism_are_refused() {
    let mut b = sasl_broker("PLAIN,SCRAM-SHA-512", &[]);
    let admin = java_config(&b, "admin", "PLAIN", "admin", "admin-secret");
    add_scram_user(&b, &admin, "SCRAM-SHA-512", "alice", "alice-secret");
    run_ok(&mut tool(&b, "kafka-topics", &admin, &["--create", "--topic", "guarded", "--partitions", "1"]), None, T);
    run_ok(&mut tool(&b, "kafka-console-producer", &admin, &["--topic", "guarded"]), Some(b"secret-data\n"), T);

    const SCRAM_FAILED: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    const PLAIN_FAILED: &str = "Authentication failed: Invalid username or password";
    for lib in ["confluent", "kafka-python"] {
        for action in ["produce", "consume"] {
            let ran = client(lib, action, &b, "guarded", ("SCRAM-SHA-512", "alice", "wrong-secret"), 1);
            assert_refused(&ran, &format!("{lib} {action}: wrong SCRAM password"), SCRAM_FAILED);
            let ran = client(lib, action, &b, "guarded", ("SCRAM-SHA-512", "mallory", "alice-secret"), 1);
            assert_refused(&ran, &format!("{lib} {action}: unknown SCRAM user"), SCRAM_FAILED);
            let ran = client(lib, action, &b, "guarded", ("PLAIN", "admin", "wrong-secret"), 1);
            assert_refused(&ran, &format!("{lib} {action}: wrong PLAIN password"), PLAIN_FAILED);
        }
    }
    let ran = client("confluent", "consume", &b, "guarded", ("SCRAM-SHA-256", "alice", "alice-secret"), 1);
    assert_refused(&ran, "confluent: SCRAM-SHA-256 not enabled", "Unsupported SASL mechanism");
    let ran = client("kafka-python", "consume", &b, "guarded", ("SCRAM-SHA-256", "alice", "alice-secret"), 1);
    assert_refused(&ran, "kafka-python: SCRAM-SHA-256 not enabled", "UnsupportedSaslMechanismError");

    let wrong = java_config(&b, "wrong", "SCRAM-SHA-512", "alice", "wrong-secret");
    let ran = run(&mut tool(&b, "kafka-topics", &wrong, &["--list"]), None, T);
    assert_refused(&ran, "kafka-topics: wrong SCRAM password", SCRAM_FAILED);
    let sha256 = java_config(&b, "sha256", "SCRAM-SHA-256", "alice", "alice-secret");
    let ran = run(&mut tool(&b, "kafka-topics", &sha256, &["--list"]), None, T);
    assert_refused(
        &ran,
        "kafka-topics: SCRAM-SHA-256 not enabled",
        "not enabled in the server, enabled mechanisms are [PLAIN, SCRAM-SHA-512]",
    );

    assert_eq!(end_offset(&b, &admin, "guarded"), 1, "nothing was written by the refused clients");
    assert_up_and_quiet(&mut b);
}

fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sasl-test"))
        .with_client_software_version(StrBytes::from_static_str("1"))
}

/// Sends another SaslHandshake and reports whether the broker closed the
/// connection or left it unanswered (Kafka closes it after a failed
/// login; the request must not be served either way).
fn refuses_more(s: &mut std::net::TcpStream) -> bool {
    send_request(s, ApiKey::SaslHandshake, 1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    closed(s)
}

fn handshake(s: &mut std::net::TcpStream, mechanism: &str) -> SaslHandshakeResponse {
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    request(s, ApiKey::SaslHandshake, 1, &req)
}

fn authenticate(s: &mut std::net::TcpStream, version: i16, token: &'static [u8]) -> SaslAuthenticateResponse {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(token));
    request(s, ApiKey::SaslAuthenticate, version, &req)
}

#[test]
fn wire_handshake_authenticate_and_session_lifetime() {
    let b = sasl_broker("PLAIN,SCRAM-SHA-512", &[("connections.max.reauth.ms", "60000")]);
    let mut s = connect(&b);
    let versions: ApiVersionsResponse = request(&mut s, ApiKey::ApiVersions, 3, &api_versions());
    for key in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate, ApiKey::DescribeUserScramCredentials, ApiKey::AlterUserScramCredentials] {
        assert!(versions.api_keys.iter().any(|k| k.api_key == key as i16), "ApiVersions does not list {key:?}");
    }
    let r = handshake(&mut s, "PLAIN");
    assert_eq!(r.error_code, 0);
    assert_eq!(r.mechanisms.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["PLAIN", "SCRAM-SHA-512"]);
    let r = authenticate(&mut s, 2, b"\0admin\0admin-secret");
    // Kafka sends an empty message, not null, on success.
    assert_eq!((r.error_code, r.error_message.as_deref()), (0, Some("")));
    assert_eq!(r.session_lifetime_ms, 60000, "KIP-368 lifetime from connections.max.reauth.ms");
    let meta: MetadataResponse = request(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(meta.brokers.len(), 1, "authenticated requests are served");

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33) with the enabled list, then the connection is done.
    let mut s = connect(&b);
    let r = handshake(&mut s, "GSSAPI");
    assert_eq!(r.error_code, 33);
    assert_eq!(r.mechanisms.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["PLAIN", "SCRAM-SHA-512"]);
    assert!(refuses_more(&mut s), "the connection is served after an unsupported mechanism");

    // A wrong PLAIN password: SASL_AUTHENTICATION_FAILED (58) with Kafka's message, then closed.
    let mut s = connect(&b);
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 0);
    let r = authenticate(&mut s, 1, b"\0admin\0wrong-secret");
    assert_eq!(r.error_code, 58);
    assert_eq!(r.error_message.as_deref(), Some("Authentication failed: Invalid username or password"));
    assert!(refuses_more(&mut s), "the connection is served after a failed login");
}

#[test]
fn wire_sasl_on_a_plaintext_listener_is_an_illegal_state() {
    let b = Broker::start();
    let mut s = connect(&b);
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 34, "ILLEGAL_SASL_STATE");
    let r = authenticate(&mut s, 2, b"\0a\0b");
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    let r: ApiVersionsResponse = request(&mut s, ApiKey::ApiVersions, 3, &api_versions());
    assert_eq!(r.error_code, 0, "the connection is still served");
}

/// KIP-368 on the wire: a login lasts `connections.max.reauth.ms`; a new
/// SaslHandshake + SaslAuthenticate on the same connection extends it (as
/// the same user only), and a connection that lets it lapse is closed at
/// its next request. Then Kafka's Java producer, which re-authenticates by
/// itself, runs across several lifetimes without an error.
#[test]
fn reauthentication_extends_a_session_and_an_expired_one_is_closed() {
    const LIFETIME: Duration = Duration::from_millis(4000);
    let lifetime = LIFETIME.as_millis().to_string();
    let b = sasl_broker("PLAIN,SCRAM-SHA-512", &[("connections.max.reauth.ms", &lifetime)]);
    let metadata = |s: &mut std::net::TcpStream| -> MetadataResponse {
        request(s, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None))
    };

    // Re-authenticated at about 60% of the lifetime, served past the first one.
    let mut s = connect(&b);
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 0);
    assert_eq!(authenticate(&mut s, 2, b"\0admin\0admin-secret").session_lifetime_ms, LIFETIME.as_millis() as i64);
    std::thread::sleep(LIFETIME * 6 / 10);
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 0, "re-authentication's handshake");
    let r = authenticate(&mut s, 2, b"\0admin\0admin-secret");
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, LIFETIME.as_millis() as i64), "{r:?}");
    std::thread::sleep(LIFETIME * 6 / 10);
    assert_eq!(metadata(&mut s).brokers.len(), 1, "served after the first login's lifetime");
    // Another user on the same connection is refused, and the connection ends.
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 0);
    let r = authenticate(&mut s, 2, b"\0carol\0carol-pw");
    assert_eq!(r.error_code, 58, "{r:?}");
    assert!(refuses_more(&mut s), "served after a change of principal");

    // A session left to lapse: the next request closes the connection.
    let mut s = connect(&b);
    assert_eq!(handshake(&mut s, "PLAIN").error_code, 0);
    assert_eq!(authenticate(&mut s, 2, b"\0admin\0admin-secret").error_code, 0);
    std::thread::sleep(LIFETIME + Duration::from_millis(500));
    send_request(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(closed(&mut s), "an expired session was served");

    // Java's producer over SCRAM for three lifetimes: every record acknowledged.
    let admin = java_config(&b, "admin", "PLAIN", "admin", "admin-secret");
    add_scram_user(&b, &admin, "SCRAM-SHA-512", "alice", "alice-secret");
    let alice = java_config(&b, "alice", "SCRAM-SHA-512", "alice", "alice-secret");
    run_ok(&mut tool(&b, "kafka-topics", &admin, &["--create", "--topic", "reauth", "--partitions", "1"]), None, T);
    let out = run_ok(
        tool(&b, "kafka-producer-perf-test", &alice, &["--topic", "reauth", "--num-records", "600", "--record-size", "100"]).args([
            "--throughput",
            "50",
            "--command-property",
            "acks=all",
        ]),
        None,
        T,
    );
    assert!(out.contains("600 records sent"), "{out}");
    assert!(!out.contains("ERROR") && !out.contains("Exception"), "{out}");
    assert_eq!(end_offset(&b, &admin, "reauth"), 600);
}
