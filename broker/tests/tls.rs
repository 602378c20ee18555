//! TLS listeners with real clients: kafka-python, confluent-kafka
//! (librdkafka) and Kafka's Java tools produce and consume over an SSL
//! listener beside a PLAINTEXT one, each told its own listener's advertised
//! address; mutual TLS with `ssl.client.auth=required` admits the right
//! client certificate (and the broker logs its principal) and refuses no
//! certificate, one from another CA and plaintext, with no data written and
//! the broker still serving; a missing keystore is a one-line config error.
//! PKCS12 keystores and truststores, as openssl (current and legacy
//! encryption) and Java's keytool write them, serve mutual TLS too.
//! Between nodes: a cluster whose CONTROLLER listener is SSL with
//! `ssl.client.auth=required` forms and replicates over mutual TLS, and a
//! node with a certificate from another CA cannot join it.
//!
//! Certificates are made at test time with the `openssl` command line. The
//! broker has two listeners, so it is started here rather than by
//! `support::Broker` (whose single PLAINTEXT listener the `listeners`
//! override would replace); `FJORD_TEST_BROKER=kafka` runs Apache Kafka 4.4
//! with the same listeners and ssl settings.

mod support;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::certs::Certs;
use support::cluster::Cluster;
use support::{Kind, Ran, api_versions_answered, free_port, kafka_tool, kind, repo_root, run, run_ok, terminate};
use tempfile::TempDir;

const T: Duration = Duration::from_secs(120);

/// The settings this file's brokers and clients take from the certificates.
trait TlsSettings {
    fn broker_ssl(&self, mtls: bool) -> Vec<(String, String)>;
    fn client_props(&self, cert: Option<&str>) -> Vec<(String, String)>;
    fn java_config(&self, cert: Option<&str>) -> PathBuf;
}

impl TlsSettings for Certs {
    /// The broker's ssl settings: its keystore, and with `mtls` the
    /// truststore and `ssl.client.auth=required`.
    fn broker_ssl(&self, mtls: bool) -> Vec<(String, String)> {
        let mut s = vec![("ssl.keystore.type".into(), "PEM".into()), ("ssl.keystore.location".into(), self.p("server.pem"))];
        if mtls {
            s.push(("ssl.truststore.type".into(), "PEM".into()));
            s.push(("ssl.truststore.location".into(), self.p("ca.pem")));
            // Per listener, Kafka's rule: the prefixed key wins.
            s.push(("ssl.client.auth".into(), "none".into()));
            s.push(("listener.name.external.ssl.client.auth".into(), "required".into()));
        }
        s
    }

    /// librdkafka's settings for SSL, with a client certificate if `cert` names one.
    fn client_props(&self, cert: Option<&str>) -> Vec<(String, String)> {
        [vec![("security.protocol".into(), "SSL".into())], self.rdkafka("ca", cert)].concat()
    }

    /// A Java client's `--command-config` file (PEM trust and key stores).
    fn java_config(&self, cert: Option<&str>) -> PathBuf {
        let text = format!("security.protocol=SSL\n{}", self.java("ca", cert));
        let path = self.path(&format!("java-{}.properties", cert.unwrap_or("anon")));
        fs::write(&path, text).unwrap();
        path
    }
}

/// A broker with `INTERNAL://127.0.0.1:<plain>` (PLAINTEXT) and
/// `EXTERNAL://127.0.0.1:<ssl>` (SSL, advertised as `localhost:<ssl>`).
struct Node {
    kind: Kind,
    dir: TempDir,
    child: Option<Child>,
    plain: u16,
    ssl: u16,
}

impl Node {
    fn start(ssl: &[(String, String)]) -> Node {
        let dir = tempfile::Builder::new().prefix("fjord-tls-broker-").tempdir().unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        let (plain, tls) = (free_port(), free_port());
        let mut settings: Vec<(String, String)> = vec![
            ("listeners".into(), format!("INTERNAL://127.0.0.1:{plain},EXTERNAL://127.0.0.1:{tls}")),
            ("advertised.listeners".into(), format!("INTERNAL://127.0.0.1:{plain},EXTERNAL://localhost:{tls}")),
            ("listener.security.protocol.map".into(), "INTERNAL:PLAINTEXT,EXTERNAL:SSL".into()),
            ("inter.broker.listener.name".into(), "INTERNAL".into()),
            ("log.dirs".into(), dir.path().join("data").display().to_string()),
        ];
        settings.extend_from_slice(ssl);
        let mut node = Node { kind: kind(), dir, child: None, plain, ssl: tls };
        let log = OpenOptions::new().create(true).append(true).open(node.log_path()).unwrap();
        let mut cmd = match node.kind {
            Kind::Fjord => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
                cmd.arg("start");
                for (k, v) in &settings {
                    cmd.args(["--override", &format!("{k}={v}")]);
                }
                cmd
            }
            Kind::Kafka => node.kafka_command(settings),
        };
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        node.child = Some(cmd.spawn().unwrap());
        node.wait_ready();
        node
    }

    fn kafka_command(&self, settings: Vec<(String, String)>) -> Command {
        let c = free_port();
        let mut text = format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{c}\ncontroller.listener.names=CONTROLLER\n\
             offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n"
        );
        for (k, v) in settings {
            let v = match k.as_str() {
                "listeners" => format!("{v},CONTROLLER://127.0.0.1:{c}"),
                "listener.security.protocol.map" => format!("{v},CONTROLLER:PLAINTEXT"),
                _ => v,
            };
            text.push_str(&format!("{k}={v}\n"));
        }
        let props = self.dir.path().join("server.properties");
        fs::write(&props, text).unwrap();
        run_ok(kafka_tool("kafka-storage").args(["format", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c"]).arg(&props), None, T);
        let mut cmd = kafka_tool("kafka-server-start");
        cmd.arg(&props).env("KAFKA_TOOL_HEAP", "1g");
        cmd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !api_versions_answered(self.plain) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("the broker exited with {status} while starting:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "the broker did not answer within 90s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// The broker's log, without the terminal colour codes.
    fn log(&self) -> String {
        let raw = fs::read(self.log_path()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw.as_str();
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            rest = rest[i..].split_once('m').map_or("", |(_, r)| r);
        }
        out.push_str(rest);
        out
    }

    fn plain_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.plain)
    }

    fn ssl_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ssl)
    }

    /// Creates a one-partition topic over the plaintext listener.
    fn create_topic(&self, topic: &str) {
        client("confluent", "create", &self.plain_bootstrap(), topic, &[], 0);
    }

    /// The high watermark of the topic's partition 0, read over plaintext.
    fn end_offset(&self, topic: &str) -> i64 {
        let out = client("confluent", "end", &self.plain_bootstrap(), topic, &[], 0);
        out.stdout.trim().parse().unwrap_or_else(|_| panic!("end offset of {topic}: {}", out.text()))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- broker log tail ---\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}

/// One client, one action; the script below, run by the venv's Python.
const SCRIPT: &str = r#"
import json, sys, time
client, action, bootstrap, topic, props, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), int(sys.argv[6])
want = [("k%d" % i, "v%d" % i) for i in range(count)]

if client == "confluent":
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    base = dict(props, **{"bootstrap.servers": bootstrap})
    if action == "create":
        admin = AdminClient(base)  # kept alive: its futures fail once it is collected
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(60)
    elif action == "brokers":
        md = AdminClient(base).list_topics(timeout=30)
        print(",".join("%s:%d" % (b.host, b.port) for b in md.brokers.values()))
    elif action == "end":
        c = Consumer(dict(base, **{"group.id": "tls-end"}))
        print(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1])
    elif action == "produce":
        p = Producer(dict({"acks": "all", "message.timeout.ms": 15000}, **base))
        errors, acked = [], []
        def done(err, msg):
            (errors if err else acked).append(str(err) if err else msg.offset())
        for k, v in want:
            p.produce(topic, key=k, value=v, partition=0, on_delivery=done)
        p.flush(30)
        if errors or len(acked) != count:
            print("produce failed: %d acked, %s" % (len(acked), errors[:1]))
            sys.exit(3)
        c = Consumer(dict(base, **{"group.id": "tls-read", "enable.auto.commit": False}))
        c.assign([TopicPartition(topic, 0, 0)])
        got, deadline = [], time.time() + 60
        while len(got) < count and time.time() < deadline:
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append((m.key().decode(), m.value().decode()))
        assert got == want, got
        print("ok %d" % count)
else:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    kw = {"bootstrap_servers": bootstrap, "security_protocol": props.get("security.protocol", "PLAINTEXT")}
    for ours, theirs in [("ssl.ca.location", "ssl_cafile"), ("ssl.certificate.location", "ssl_certfile"), ("ssl.key.location", "ssl_keyfile")]:
        if ours in props:
            kw[theirs] = props[ours]
    p = KafkaProducer(acks="all", **kw)
    for k, v in want:
        p.send(topic, key=k.encode(), value=v.encode(), partition=0).get(timeout=30)
    p.close()
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, **kw)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    got, deadline = [], time.time() + 60
    while len(got) < count and time.time() < deadline:
        for recs in c.poll(timeout_ms=1000).values():
            got.extend((r.key.decode(), r.value.decode()) for r in recs)
    assert got == want, got
    print("ok %d" % count)
"#;

fn client(which: &str, action: &str, bootstrap: &str, topic: &str, props: &[(String, String)], count: usize) -> Ran {
    let root = repo_root();
    let py = root.join(".cache/venv/bin/python");
    assert!(py.exists(), "the Python clients' venv is missing: run `bash scripts/install-test-deps.sh`");
    let props: serde_json::Map<String, serde_json::Value> = props.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let ran = run(
        Command::new(py)
            .args(["-c", SCRIPT, which, action, bootstrap, topic, &serde_json::Value::Object(props).to_string(), &count.to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        None,
        T,
    );
    if matches!(action, "create" | "end" | "brokers") {
        assert!(ran.status.success(), "{which} {action} failed:\n{}", ran.text());
    }
    ran
}

/// A client that must get through: exit 0 and all records read back.
fn round_trip(which: &str, bootstrap: &str, topic: &str, props: &[(String, String)]) {
    let ran = client(which, "produce", bootstrap, topic, props, 20);
    assert!(ran.status.success() && ran.stdout.contains("ok 20"), "{which} over TLS to {bootstrap}:\n{}", ran.text());
}

/// Kafka's console tools over TLS with `--command-config`.
fn java_round_trip(node: &Node, certs: &Certs, cert: Option<&str>, topic: &str) {
    let config = certs.java_config(cert);
    let config = config.to_str().unwrap();
    let input: String = (0..5).map(|i| format!("j{i}\n")).collect();
    run_ok(
        kafka_tool("kafka-console-producer").args([
            "--bootstrap-server",
            &node.ssl_bootstrap(),
            "--topic",
            topic,
            "--command-config",
            config,
        ]),
        Some(input.as_bytes()),
        T,
    );
    let out = run_ok(
        kafka_tool("kafka-console-consumer").args([
            "--bootstrap-server",
            &node.ssl_bootstrap(),
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            "5",
            "--timeout-ms",
            "60000",
            "--command-config",
            config,
        ]),
        None,
        T,
    );
    assert_eq!(out, input, "Java console consumer over TLS");
}

#[test]
fn ssl_listener_serves_python_librdkafka_and_java_and_advertises_per_listener() {
    let certs = Certs::make("fjord-tls-");
    let node = Node::start(&certs.broker_ssl(false));
    let ssl = certs.client_props(None);

    // Each listener tells its clients its own advertised address.
    let seen = client("confluent", "brokers", &node.ssl_bootstrap(), "-", &ssl, 0).stdout;
    assert_eq!(seen.trim(), format!("localhost:{}", node.ssl), "Metadata over the SSL listener");
    let seen = client("confluent", "brokers", &node.plain_bootstrap(), "-", &[], 0).stdout;
    assert_eq!(seen.trim(), format!("127.0.0.1:{}", node.plain), "Metadata over the plaintext listener");

    for (which, topic) in [("confluent", "tls-librdkafka"), ("kafka-python", "tls-kafka-python")] {
        node.create_topic(topic);
        round_trip(which, &node.ssl_bootstrap(), topic, &ssl);
        assert_eq!(node.end_offset(topic), 20, "{which}: records seen over plaintext");
    }
    node.create_topic("tls-java");
    java_round_trip(&node, &certs, None, "tls-java");
}

#[test]
fn mutual_tls_admits_the_right_certificate_and_refuses_the_rest() {
    let certs = Certs::make("fjord-tls-");
    let mut ssl = certs.broker_ssl(true);
    ssl.push(("listener.name.external.ssl.principal.mapping.rules".into(), "RULE:^CN=([^,]*),OU=eng,.*$/$1/U,DEFAULT".into()));
    let node = Node::start(&ssl);

    node.create_topic("mtls");
    round_trip("confluent", &node.ssl_bootstrap(), "mtls", &certs.client_props(Some("client")));
    round_trip("kafka-python", &node.ssl_bootstrap(), "mtls-kp", &certs.client_props(Some("client")));
    node.create_topic("mtls-java");
    java_round_trip(&node, &certs, Some("client"), "mtls-java");
    if node.kind == Kind::Fjord {
        // CN=client,OU=eng,O=fjord mapped by the rule to CLIENT.
        let log = node.log();
        assert!(
            log.lines().any(|l| l.contains("authenticated by TLS client certificate") && l.contains("principal=User:CLIENT")),
            "no log line with the client's principal:\n{log}"
        );
    }

    // Refused: no certificate, a certificate from another CA, plaintext.
    node.create_topic("refused");
    let refused: [(&str, Vec<(String, String)>); 3] = [
        ("no client certificate", certs.client_props(None)),
        ("a certificate from another CA", certs.client_props(Some("stranger"))),
        ("plaintext", Vec::new()),
    ];
    for (what, props) in &refused {
        // Refused for good: no need to wait out librdkafka's retries for long.
        let props = [props.as_slice(), &[("message.timeout.ms".to_string(), "5000".to_string())]].concat();
        let ran = client("confluent", "produce", &node.ssl_bootstrap(), "refused", &props, 3);
        assert!(!ran.status.success(), "{what}: the client got through:\n{}", ran.text());
        assert_eq!(node.end_offset("refused"), 0, "{what}: records were written");
        assert!(api_versions_answered(node.plain), "{what}: the broker stopped answering");
    }
    let java = run(
        kafka_tool("kafka-topics").args([
            "--bootstrap-server",
            &node.ssl_bootstrap(),
            "--list",
            "--command-config",
            certs.java_config(None).to_str().unwrap(),
        ]),
        None,
        T,
    );
    assert!(!java.status.success(), "Java without a client certificate got through:\n{}", java.text());
    // Still serving TLS clients after all that.
    round_trip("confluent", &node.ssl_bootstrap(), "mtls-after", &certs.client_props(Some("client")));
    if node.kind == Kind::Fjord {
        assert!(node.log().contains("TLS handshake failed"), "refused handshakes are logged");
    }
}

/// Runs `fjord start` that must fail at startup; its stderr.
fn fjord_fails(settings: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.arg("start");
    let base = [
        ("listeners".to_string(), format!("PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{}", free_port(), free_port())),
        ("log.dirs".to_string(), dir.path().display().to_string()),
    ];
    for (k, v) in base.iter().chain(settings) {
        cmd.args(["--override", &format!("{k}={v}")]);
    }
    let ran = run(&mut cmd, None, Duration::from_secs(30));
    assert!(!ran.status.success(), "fjord started with {settings:?}:\n{}", ran.text());
    ran.stderr
}

#[test]
fn unusable_tls_settings_are_one_line_config_errors() {
    // Fjord's own start-up messages: always fjord, whatever FJORD_TEST_BROKER says.
    let certs = Certs::make("fjord-tls-");
    let missing = certs.p("missing.pem");
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mismatched = certs.path("mismatched.pem");
    let (key, crt) = (fs::read_to_string(certs.path("server.key")).unwrap(), fs::read_to_string(certs.path("client.crt")).unwrap());
    fs::write(&mismatched, format!("{key}{crt}")).unwrap();
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        (vec![pair("ssl.keystore.location", &missing)], "cannot read ssl.keystore.location"),
        (vec![], "needs a keystore"),
        (vec![pair("ssl.keystore.location", mismatched.to_str().unwrap())], "does not match"),
        (vec![pair("ssl.keystore.location", &certs.p("server.crt"))], "PRIVATE KEY"),
        (vec![pair("ssl.keystore.location", &certs.p("server.pem")), pair("ssl.client.auth", "required")], "no truststore"),
        (vec![pair("ssl.keystore.type", "JKS"), pair("ssl.keystore.location", &certs.p("server.pem"))], "PEM"),
    ];
    for (settings, want) in cases {
        let err = fjord_fails(&settings);
        let line = err.trim();
        assert!(line.starts_with("fjord: config error: ") && line.contains(want), "{settings:?}: {err}");
        assert_eq!(line.lines().count(), 1, "{settings:?}: not one line: {err}");
        assert!(!line.contains("panicked"), "{err}");
    }
}

/// The settings of every node for TLS between nodes: CONTROLLER mapped to
/// SSL, the node certificate, the CA, client certificates required.
fn between_nodes_ssl(certs: &Certs, keystore: &str) -> Vec<(String, String)> {
    [
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL".to_string()),
        ("ssl.keystore.type", "PEM".into()),
        ("ssl.keystore.location", certs.p(&format!("{keystore}.pem"))),
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.location", certs.p("ca.pem")),
        ("listener.name.controller.ssl.client.auth", "required".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn nodes_replicate_over_mutual_tls_and_refuse_a_stranger() {
    let certs = Certs::make("fjord-tls-");
    let ssl = between_nodes_ssl(&certs, "node");
    let overrides: Vec<(&str, &str)> = ssl.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Three controllers and a broker-only node, whose connections to the
    // controllers are TLS too.
    let c = Cluster::start(3, 1, &overrides);

    // The controller port speaks TLS with the node certificate and asks for
    // the peer's.
    let port = c.controller_port(1).expect("node 1 is a controller");
    let ran = run(
        Command::new("openssl").args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-CAfile", &certs.p("ca.pem")]).args([
            "-cert",
            &certs.p("node.crt"),
            "-key",
            &certs.p("node.key"),
            "-verify_return_error",
            "-brief",
        ]),
        Some(b""),
        Duration::from_secs(30),
    );
    let text = ran.text();
    let subject = text.contains("CN=fjord-node") || text.contains("CN = fjord-node");
    assert!(text.contains("Verification: OK") && subject, "s_client:\n{text}");

    // Partition replication and the metadata quorum work over it.
    let topic = "between-nodes";
    c.topics(4, &["--create", "--topic", topic, "--partitions", "3", "--replication-factor", "3"]);
    c.wait_topic(4, topic, "3 partitions with 3 replicas in sync", T, |v| {
        v.len() == 3 && v.values().all(|p| p.leader.is_some() && p.isr.len() == 3)
    });
    let out = run_ok(
        kafka_tool("kafka-producer-perf-test")
            .args(["--bootstrap-server", &c.bootstrap(), "--topic", topic, "--num-records", "3000", "--record-size", "100"])
            .args(["--throughput", "-1", "--command-property", "acks=all"]),
        None,
        T,
    );
    assert!(out.contains("3000 records sent"), "{out}");
    for id in [1, 4] {
        assert_eq!(c.end_offsets(id, topic).values().sum::<i64>(), 3000, "end offsets through node {id}");
    }

    if c.kind() == Kind::Kafka {
        eprintln!("the stranger node is fjord's only (a Kafka node needs its storage formatted first)");
        return;
    }
    // A node whose certificate another CA signed (it trusts the cluster's
    // CA, so only the controllers' check can keep it out) never registers.
    let dir = tempfile::Builder::new().prefix("fjord-stranger-").tempdir().unwrap();
    let log = dir.path().join("node.log");
    let voters = (1..=3).map(|id| format!("{id}@127.0.0.1:{}", c.controller_port(id).unwrap())).collect::<Vec<_>>().join(",");
    let mut settings = between_nodes_ssl(&certs, "rogue-node");
    settings.extend([
        ("node.id".to_string(), "5".to_string()),
        ("process.roles".into(), "broker".into()),
        ("listeners".into(), format!("PLAINTEXT://127.0.0.1:{}", free_port())),
        ("controller.listener.names".into(), "CONTROLLER".into()),
        ("controller.quorum.voters".into(), voters),
        ("log.dirs".into(), dir.path().join("data").display().to_string()),
    ]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.arg("start");
    for (k, v) in &settings {
        cmd.args(["--override", &format!("{k}={v}")]);
    }
    let f = fs::File::create(&log).unwrap();
    let stranger = cmd.stdin(Stdio::null()).stdout(f.try_clone().unwrap()).stderr(f).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refused = |id| c.log_tail(id, 400).lines().any(|l| l.contains("refused connection") && l.contains("invalid peer certificate"));
    while !refused(1) || !refused(2) {
        assert!(Instant::now() < deadline, "the controllers never refused the stranger; node 1:\n{}", c.log_tail(1, 40));
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed: Vec<i32> = c.brokers_seen(1).expect("node 1 answers").iter().map(|b| b.id).collect();
    terminate(stranger);
    assert_eq!(listed, [1, 2, 3, 4], "the stranger got in");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("waiting for the controller quorum"), "the stranger's log:\n{text}");
    assert_eq!(c.end_offsets(4, topic).values().sum::<i64>(), 3000, "the cluster still serves");
}

/// Runs a command that must succeed (openssl, keytool) in the certificates' folder.
fn tool(certs: &Certs, program: &str, args: &[&str]) {
    run_ok(Command::new(program).args(args).current_dir(certs.path(".")), None, T);
}

#[test]
fn pkcs12_stores_from_openssl_and_keytool_serve_mutual_tls() {
    let certs = Certs::make("fjord-tls-");
    let pass = "changeit";
    let passout = format!("pass:{pass}");
    // OpenSSL 3's default (PBES2, AES-256, HMAC-SHA256) and its legacy
    // scheme (3DES keys, RC2 certificates) as older tools wrote them.
    tool(
        &certs,
        "openssl",
        &["pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-out", "openssl.p12", "-passout", &passout],
    );
    tool(
        &certs,
        "openssl",
        &["pkcs12", "-export", "-legacy", "-in", "server.crt", "-inkey", "server.key", "-out", "legacy.p12", "-passout", &passout],
    );
    // What keytool writes (the JDK's own PKCS12), from the OpenSSL store.
    tool(
        &certs,
        "keytool",
        &[
            "-importkeystore",
            "-srckeystore",
            "openssl.p12",
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            pass,
            "-destkeystore",
            "keytool.p12",
            "-deststoretype",
            "PKCS12",
            "-deststorepass",
            pass,
            "-noprompt",
        ],
    );
    // A truststore of the CA, as keytool makes one.
    tool(
        &certs,
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            "ca.pem",
            "-keystore",
            "trust.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            pass,
        ],
    );

    for store in ["openssl.p12", "legacy.p12", "keytool.p12"] {
        let ssl: Vec<(String, String)> = [
            ("ssl.keystore.type", "PKCS12".to_string()),
            ("ssl.keystore.location", certs.p(store)),
            ("ssl.keystore.password", pass.into()),
            ("ssl.key.password", pass.into()),
            ("ssl.truststore.type", "PKCS12".into()),
            ("ssl.truststore.location", certs.p("trust.p12")),
            ("ssl.truststore.password", pass.into()),
            ("listener.name.external.ssl.client.auth", "required".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let node = Node::start(&ssl);
        let topic = format!("pkcs12-{}", store.trim_end_matches(".p12"));
        node.create_topic(&topic);
        round_trip("confluent", &node.ssl_bootstrap(), &topic, &certs.client_props(Some("client")));
        assert_eq!(node.end_offset(&topic), 20, "{store}: records seen over plaintext");
        // The truststore is in force: a client certificate from another CA is refused.
        let props = [certs.client_props(Some("stranger")), vec![("message.timeout.ms".into(), "5000".into())]].concat();
        let ran = client("confluent", "produce", &node.ssl_bootstrap(), &topic, &props, 3);
        assert!(!ran.status.success(), "{store}: a stranger got through:\n{}", ran.text());
        assert_eq!(node.end_offset(&topic), 20, "{store}: the stranger wrote records");
    }

    if kind() == Kind::Fjord {
        // A wrong password is a one-line config error naming the store.
        let err = fjord_fails(&[
            ("ssl.keystore.type".into(), "PKCS12".into()),
            ("ssl.keystore.location".into(), certs.p("keytool.p12")),
            ("ssl.keystore.password".into(), "wrong".into()),
        ]);
        assert!(err.contains("ssl.keystore.location") && err.contains("keytool.p12") && err.contains("password"), "{err}");
        assert!(!err.contains("wrong"), "the password is printed: {err}");
    }
}
