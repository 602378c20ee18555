//! Per-broker ports behind one load balancer, as AWS PrivateLink serves a
//! cluster: three nodes sit behind haproxy in TCP mode (standing in for the
//! NLB) with one frontend per broker, `localhost:8443/8444/8445`, each
//! forwarding to one broker's EXTERNAL listener, which advertises that
//! proxy address. Kafka's Java tools and librdkafka, given only
//! `localhost:8443`, are told the proxy addresses by Metadata and produce
//! to and consume from every partition of an RF 3 topic through the proxy
//! alone: over TLS passed through to the brokers with client certificates
//! (mutual TLS), and over SASL_SSL with SCRAM-SHA-512 users made by
//! `kafka-configs` and ACLs enforced. Refused, with the client's error for
//! it, no data, and every broker still serving: plaintext to the TLS port,
//! a client that does not trust the brokers' CA, no client certificate, a
//! client certificate from another CA, a wrong password, an unknown user
//! and a user without ACLs. No broker log shows a password.
//!
//! Each node keeps the harness's PLAINTEXT listener for the brokers among
//! themselves and for the harness (topics, users, ACLs, end offsets), as a
//! PrivateLink cluster keeps its internal network. The proxy's ports are
//! fixed, so one run of this binary at a time per machine; haproxy comes
//! from `scripts/install-test-deps.sh`. `FJORD_TEST_BROKER=kafka` runs the
//! same, with the same settings, against Apache Kafka 4.4.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::certs::Certs;
use support::cluster::{Cluster, NodeSettings, Role, py};
use support::groups::T;
use support::{Kind, Ran, Rec, api_versions_answered, assert_dense_from_zero, kafka_tool, run, run_ok};

/// The load balancer's host and its port for broker `i + 1`, as the issue
/// describes the NLB: fixed ports, one per broker.
const PROXY_HOST: &str = "localhost";
const PROXY_PORTS: [u16; 3] = [8443, 8444, 8445];
/// The only address the clients are given: broker 1's proxy port.
const BOOTSTRAP: &str = "localhost:8443";
const PARTITIONS: usize = 3;
/// Records each client writes (librdkafka: this many per partition).
const PER_CLIENT: usize = 30;

/// Settings as (key, value) pairs, Kafka's names.
type Settings = Vec<(String, String)>;

fn proxy_port(id: i32) -> u16 {
    PROXY_PORTS[(id - 1) as usize]
}

// ---------------------------------------------------------------------------
// certificates

/// The settings the brokers and clients here take from the certificates
/// (the brokers' `server` certificate names `localhost`, the proxy's host).
trait ProxySettings {
    fn broker_settings(&self, mtls: bool) -> Settings;
}

impl ProxySettings for Certs {
    /// The EXTERNAL listener's TLS settings (Kafka's per-listener names):
    /// the brokers' PEM keystore, and with `mtls` the CA as truststore and
    /// client certificates required.
    fn broker_settings(&self, mtls: bool) -> Settings {
        let mut s = vec![
            ("listener.name.external.ssl.keystore.type".to_string(), "PEM".to_string()),
            ("listener.name.external.ssl.keystore.location".to_string(), self.p("server.pem")),
        ];
        if mtls {
            s.push(("listener.name.external.ssl.truststore.type".into(), "PEM".into()));
            s.push(("listener.name.external.ssl.truststore.location".into(), self.p("ca.pem")));
            s.push(("listener.name.external.ssl.client.auth".into(), "required".into()));
        }
        s
    }
}

// ---------------------------------------------------------------------------
// the cluster and the load balancer

fn setting(s: &[(String, String)], key: &str) -> String {
    s.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {key} in {s:?}"))
}

fn set(s: &mut Settings, key: &str, value: &str) {
    s.retain(|(k, _)| k != key);
    s.push((key.to_string(), value.to_string()));
}

/// Each node's EXTERNAL listener (protocol `protocol`) on its own port,
/// advertised as the node's proxy port, beside the harness's PLAINTEXT
/// listener, which stays the brokers' own; then `extra`. The ports are held
/// bound until the node's settings are made, so that the harness, which
/// takes its own free ports after these, cannot be handed one of them.
fn behind_the_proxy(held: [TcpListener; 3], protocol: &'static str, extra: Settings) -> NodeSettings {
    let external = held.each_ref().map(|l| l.local_addr().unwrap().port());
    let held = Mutex::new(held.map(Some));
    Box::new(move |id, s| {
        let i = (id - 1) as usize;
        drop(held.lock().unwrap()[i].take());
        let listeners = setting(s, "listeners");
        let plaintext = listeners.split(',').find(|l| l.starts_with("PLAINTEXT://")).expect("the harness's PLAINTEXT listener").to_string();
        set(s, "listeners", &format!("{listeners},EXTERNAL://127.0.0.1:{}", external[i]));
        set(s, "advertised.listeners", &format!("{plaintext},EXTERNAL://{PROXY_HOST}:{}", proxy_port(id)));
        let map = setting(s, "listener.security.protocol.map");
        set(s, "listener.security.protocol.map", &format!("{map},EXTERNAL:{protocol}"));
        set(s, "inter.broker.listener.name", "PLAINTEXT");
        for (k, v) in &extra {
            set(s, k, v);
        }
    })
}

/// Three combined nodes behind the proxy, the proxy, and an RF 3 topic of
/// [`PARTITIONS`] partitions with a leader and a full ISR each.
fn start(protocol: &'static str, extra: Settings, topic: &str) -> (Cluster, Proxy) {
    let held = [(); 3].map(|_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0"));
    let routes = [0, 1, 2].map(|i| (PROXY_PORTS[i], held[i].local_addr().unwrap().port()));
    // Kafka's 50 partitions of __consumer_offsets take fjord seconds to
    // create (a raft group each) on a busy machine; 3 spread the group
    // coordinators over the brokers as well.
    let overrides = [("offsets.topic.num.partitions", "3")];
    let c = Cluster::start_layout(&[(Role::Combined, 3)], &overrides, Some(behind_the_proxy(held, protocol, extra)));
    let proxy = Proxy::start(c.folder(), routes);
    let partitions = PARTITIONS.to_string();
    c.topics(1, &["--create", "--topic", topic, "--partitions", &partitions, "--replication-factor", "3"]);
    c.wait_topic(1, topic, "a leader and 3 in-sync replicas for every partition", Duration::from_secs(60), |v| {
        v.len() == PARTITIONS && v.values().all(|p| p.leader.is_some() && p.isr.len() == 3)
    });
    (c, proxy)
}

/// haproxy in TCP mode on 127.0.0.1, one frontend per (port, backend port);
/// killed when dropped. Its config, stats socket and log are in `folder`.
struct Proxy {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

impl Proxy {
    fn start(folder: &Path, routes: [(u16, u16); 3]) -> Proxy {
        let socket = folder.join("haproxy.sock");
        let log = folder.join("haproxy.log");
        // An NLB forwards bytes: no TLS termination, no health checks that
        // would open sessions of their own and blur the counts.
        let mut cfg = format!(
            "global\n  maxconn 512\n  stats socket {} mode 600 level admin\n  log stdout format raw local0 info\n\
             defaults\n  mode tcp\n  log global\n  option tcplog\n  timeout connect 5s\n  timeout client 5m\n  timeout server 5m\n",
            socket.display()
        );
        for (front, back) in routes {
            cfg.push_str(&format!(
                "frontend lb{front}\n  bind 127.0.0.1:{front}\n  default_backend broker{front}\n\
                 backend broker{front}\n  server b 127.0.0.1:{back}\n"
            ));
        }
        let cfg_path = folder.join("haproxy.cfg");
        fs::write(&cfg_path, cfg).unwrap();
        let out = OpenOptions::new().create(true).append(true).open(&log).unwrap();
        // Dies with the test even when the test is killed, so that the
        // fixed ports are free for the next run.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--", "haproxy", "-db", "-f"]).arg(&cfg_path);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting haproxy through setpriv: {e} (run `bash scripts/install-test-deps.sh`)"));
        let mut p = Proxy { child: Some(child), socket, log };
        // haproxy binds every frontend before it serves its stats socket
        // (and exits if one cannot be bound).
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&p.socket).is_err() {
            if let Some(status) = p.child.as_mut().unwrap().try_wait().unwrap() {
                p.child = None;
                panic!("haproxy exited with {status} (are ports {PROXY_PORTS:?} free?):\n{}", p.log_text());
            }
            assert!(Instant::now() < deadline, "haproxy did not start within 20 s:\n{}", p.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        let frontends: Vec<u16> = p.sessions().into_keys().collect();
        assert_eq!(frontends, routes.map(|(front, _)| front), "haproxy's frontends:\n{}", p.log_text());
        p
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sessions each frontend has accepted so far, by its port.
    fn sessions(&self) -> BTreeMap<u16, u64> {
        let mut s = UnixStream::connect(&self.socket).expect("haproxy's stats socket");
        s.write_all(b"show stat\n").unwrap();
        let mut csv = String::new();
        s.read_to_string(&mut csv).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} in haproxy's stats:\n{csv}"));
        let (px, sv, stot) = (col("pxname"), col("svname"), col("stot"));
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > stot && f[sv] == "FRONTEND")
            .map(|f| (f[px].trim_start_matches("lb").parse().unwrap(), f[stot].parse().unwrap()))
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("----- haproxy's log ends -----\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
    }
}

/// The frontends whose session count grew from `before` to `after`.
fn used(before: &BTreeMap<u16, u64>, after: &BTreeMap<u16, u64>) -> BTreeSet<u16> {
    after.iter().filter(|(port, n)| before.get(port).is_some_and(|b| *n > b)).map(|(port, _)| *port).collect()
}

// ---------------------------------------------------------------------------
// librdkafka

/// confluent-kafka (librdkafka) doing one thing through `bootstrap`:
/// `brokers` prints `id host:port` per broker from Metadata; `ends` prints
/// `partition end-offset` per partition; `produce` writes `count` records
/// to each partition and prints each acknowledged one; `consume` reads
/// `count` records in group `tag` from the earliest offsets. Records print
/// as `partition offset key value`, errors (the client's and the records')
/// as `ERROR name text`; the exit code is 0 only when everything asked for
/// was done. A client that is to be refused (`refused`) stops at its first
/// error rather than retrying.
const RDKAFKA: &str = r#"
import json, os, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
action, bootstrap, topic, partitions, props, count, tag, refused = sys.argv[1:9]
partitions, props, count, refused = int(partitions), json.loads(props), int(count), refused == "refused"
errors = []
conf = dict(props, **{"bootstrap.servers": bootstrap, "error_cb": errors.append})
deadline = time.time() + (15 if refused else 60)
def going():
    return time.time() < deadline and not (refused and errors)
def finish(ok):
    for e in errors:
        print("ERROR", e.name(), e.str(), sep="\t")
    sys.stdout.flush()
    # Not sys.exit: tearing down a client in the middle of its retries can
    # crash librdkafka at interpreter exit.
    os._exit(0 if ok else 3)
def show(m):
    print(m.partition(), m.offset(), m.key().decode(), m.value().decode(), sep="\t")
if action == "brokers":
    md = AdminClient(conf).list_topics(timeout=30)
    for b in sorted(md.brokers.values(), key=lambda b: b.id):
        print("%d %s:%d" % (b.id, b.host, b.port))
elif action == "ends":
    c = Consumer(dict(conf, **{"group.id": tag}))
    for part in range(partitions):
        print(part, c.get_watermark_offsets(TopicPartition(topic, part), timeout=30)[1])
    c.close()
elif action == "produce":
    p = Producer(dict(conf, **{"acks": "all", "message.timeout.ms": 10000 if refused else 30000}))
    done = []
    for part in range(partitions):
        for i in range(count):
            p.produce(topic, key="%s-p%d-%d" % (tag, part, i), value="v-%s-%d-%d" % (tag, part, i), partition=part,
                      on_delivery=lambda err, m: done.append((err, m)))
    while len(done) < partitions * count and going():
        p.poll(0.1)
    for err, m in done:
        if err:
            errors.append(err)
        else:
            show(m)
    finish(len(done) == partitions * count and all(err is None for err, _ in done))
else:
    c = Consumer(dict(conf, **{"group.id": tag, "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    c.subscribe([topic])
    got = 0
    while got < count and going():
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            continue
        show(m)
        got += 1
    c.close()
    finish(got == count)
"#;

fn rdkafka(action: &str, topic: &str, props: &[(String, String)], count: usize, tag: &str, refused: bool) -> Ran {
    let props: serde_json::Map<String, serde_json::Value> = props.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let props = serde_json::Value::Object(props).to_string();
    let (partitions, count) = (PARTITIONS.to_string(), count.to_string());
    let mode = if refused { "refused" } else { "admitted" };
    run(py(RDKAFKA).args([action, BOOTSTRAP, topic, &partitions, &props, &count, tag, mode]), None, T)
}

/// The end offset of each partition of `topic`, read over node 1's
/// internal listener (librdkafka: quicker to start than a JVM).
fn end_offsets(c: &Cluster, topic: &str) -> BTreeMap<i32, i64> {
    let partitions = PARTITIONS.to_string();
    let out = run_ok(py(RDKAFKA).args(["ends", &c.bootstrap_of(1), topic, &partitions, "{}", "0", "ends", "admitted"]), None, T);
    out.lines()
        .map(|l| {
            let (p, end) = l.split_once(' ').unwrap_or_else(|| panic!("not a `partition end` line: {l:?}"));
            (p.parse().unwrap(), end.parse().unwrap())
        })
        .collect()
}

/// The `partition offset key value` lines of a client's output.
fn records(out: &str) -> Vec<Rec> {
    out.lines()
        .filter(|l| !l.starts_with("ERROR\t"))
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            (f.len() == 4).then(|| Rec {
                partition: f[0].parse().unwrap(),
                offset: f[1].parse().unwrap(),
                key: f[2].into(),
                value: f[3].into(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Kafka's Java tools

/// A Java client config file in the cluster's folder.
fn java_config(c: &Cluster, name: &str, text: &str) -> PathBuf {
    let path = c.folder().join(format!("{name}.properties"));
    fs::write(&path, text).unwrap();
    path
}

/// Kafka tool `name` through the proxy with `config`.
fn java(name: &str, config: &Path) -> Command {
    let mut cmd = kafka_tool(name);
    cmd.args(["--bootstrap-server", BOOTSTRAP, "--command-config"]).arg(config);
    cmd
}

/// The Java console consumer's records: `Partition:<p>`, `Offset:<o>`, key
/// and value, tab-separated.
fn java_records(out: &str) -> Vec<Rec> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            let p = f.first()?.strip_prefix("Partition:")?;
            let o = f.get(1)?.strip_prefix("Offset:")?;
            Some(Rec { partition: p.parse().unwrap(), offset: o.parse().unwrap(), key: f[2].into(), value: f[3].into() })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// what both tests check

/// librdkafka and the Java tools, given only [`BOOTSTRAP`], produce to and
/// consume from every partition of `topic` through the proxy: each is told
/// the proxy's address of every broker, connects through the frontend of
/// every partition leader, and reads back exactly what both wrote. Returns
/// the partitions' end offsets.
fn round_trips(c: &Cluster, proxy: &Proxy, topic: &str, rd: &[(String, String)], java_cfg: &Path) -> BTreeMap<i32, i64> {
    let want: Vec<String> = [1, 2, 3].map(|id| format!("{id} {PROXY_HOST}:{}", proxy_port(id))).to_vec();
    let seen = rdkafka("brokers", topic, rd, 0, "md", false);
    assert!(seen.status.success(), "librdkafka's Metadata through the proxy:\n{}", seen.text());
    assert_eq!(seen.stdout.lines().collect::<Vec<_>>(), want, "the brokers librdkafka was told of");

    let s0 = proxy.sessions();
    let produced = rdkafka("produce", topic, rd, PER_CLIENT / PARTITIONS, "rd", false);
    assert!(produced.status.success(), "librdkafka produce through the proxy:\n{}", produced.text());
    let rd_records = records(&produced.stdout);
    assert_eq!(rd_records.len(), PER_CLIENT, "{}", produced.text());
    let s1 = proxy.sessions();

    // Keys spread the Java producer's records by the default partitioner.
    let input: String = (0..PER_CLIENT).map(|i| format!("java-{i}\tv-java-{i}\n")).collect();
    run_ok(
        java("kafka-console-producer", java_cfg).args(["--topic", topic, "--reader-property", "parse.key=true"]),
        Some(input.as_bytes()),
        T,
    );
    let total = (2 * PER_CLIENT).to_string();
    // The consumer's Metadata at debug level shows what it was told of each broker.
    let consumed = run(
        java("kafka-console-consumer", java_cfg)
            .args(["--topic", topic, "--group", "java", "--from-beginning", "--max-messages", &total, "--timeout-ms", "60000"])
            .args(["--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true"])
            .args(["--formatter-property", "print.key=true"])
            .env("JAVA_TOOL_OPTIONS", "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.Metadata=debug"),
        None,
        T,
    );
    assert!(consumed.status.success(), "Java console consumer through the proxy:\n{}", consumed.text());
    for id in [1, 2, 3] {
        let node = format!("{PROXY_HOST}:{} (id: {id} ", proxy_port(id));
        assert!(consumed.stderr.contains(&node), "the Java consumer's Metadata does not show {node:?}:\n{}", consumed.stderr);
    }
    let mut java_view = java_records(&consumed.stdout);
    let s2 = proxy.sessions();
    let read = rdkafka("consume", topic, rd, 2 * PER_CLIENT, "rd", false);
    assert!(read.status.success(), "librdkafka consume through the proxy:\n{}", read.text());
    let mut rd_view = records(&read.stdout);
    let s3 = proxy.sessions();

    // Both consumers read the same records, and that is what both wrote.
    java_view.sort();
    rd_view.sort();
    assert_eq!(java_view, rd_view, "the Java and librdkafka consumers disagree");
    let mut wrote: Vec<(String, String)> = rd_records.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
    wrote.extend((0..PER_CLIENT).map(|i| (format!("java-{i}"), format!("v-java-{i}"))));
    wrote.sort();
    let mut got: Vec<(String, String)> = rd_view.iter().map(|r| (r.key.clone(), r.value.clone())).collect();
    got.sort();
    assert_eq!(got, wrote, "what was read back is not what was written");
    for r in &rd_records {
        assert!(rd_view.contains(r), "{r:?} was acknowledged but not read back");
    }
    let ends = end_offsets(c, topic);
    for p in 0..PARTITIONS as i32 {
        let part: Vec<Rec> = rd_view.iter().filter(|r| r.partition == p).cloned().collect();
        assert_dense_from_zero(&part);
        assert!(part.iter().any(|r| r.key.starts_with("java-")), "partition {p} got no Java record: {part:?}");
        assert!(part.iter().any(|r| r.key.starts_with("rd-")), "partition {p} got no librdkafka record: {part:?}");
        assert_eq!(ends.get(&p), Some(&(part.len() as i64)), "end offsets over the internal listener: {ends:?}");
    }

    // The clients reached the brokers through the proxy: each opened
    // sessions on the bootstrap frontend and on every partition leader's.
    let leaders: BTreeSet<u16> = c.topic_view(1, topic).expect("Metadata").values().filter_map(|p| p.leader).map(proxy_port).collect();
    let mut rd_used = used(&s0, &s1);
    rd_used.extend(used(&s2, &s3));
    for (client, ports) in [("librdkafka", rd_used), ("Java", used(&s1, &s2))] {
        assert!(
            ports.contains(&PROXY_PORTS[0]) && ports.is_superset(&leaders),
            "{client} used frontends {ports:?}; leaders at {leaders:?}"
        );
    }
    ends
}

/// A client refused as `what`: it failed, printed all of `expected`, and
/// got no record.
fn assert_refused(ran: &Ran, what: &str, expected: &[&str]) {
    assert!(!ran.status.success(), "{what}: the client got through:\n{}", ran.text());
    let text = format!("{}{}", ran.stdout, ran.stderr);
    let missing: Vec<&&str> = expected.iter().filter(|e| !text.contains(**e)).collect();
    assert!(missing.is_empty(), "{what}: no {missing:?} in the client's output:\n{}", ran.text());
    assert!(records(&ran.stdout).is_empty() && java_records(&ran.stdout).is_empty(), "{what}: the client got data:\n{}", ran.text());
}

/// Every node runs, answers on its internal listener, and (through the
/// proxy) on its EXTERNAL one; nothing more was written to `topic`.
fn assert_still_serving(c: &mut Cluster, topic: &str, rd: &[(String, String)], ends: &BTreeMap<i32, i64>) {
    for id in c.ids() {
        assert!(c.is_running(id), "node {id} exited");
        assert!(api_versions_answered(c.port(id)), "node {id} stopped answering");
    }
    let seen = rdkafka("brokers", topic, rd, 0, "md", false);
    assert!(seen.status.success() && seen.stdout.lines().count() == 3, "Metadata through the proxy afterwards:\n{}", seen.text());
    assert_eq!(&end_offsets(c, topic), ends, "the refused clients wrote records");
}

// ---------------------------------------------------------------------------
// the tests

#[test]
fn mutual_tls_through_the_proxy() {
    let certs = Certs::make("fjord-privatelink-certs-");
    let topic = "privatelink-tls";
    let (mut c, proxy) = start("SSL", certs.broker_settings(true), topic);
    let tls = |ca: &str, cert: Option<&str>| [vec![("security.protocol".to_string(), "SSL".to_string())], certs.rdkafka(ca, cert)].concat();
    let java_tls =
        |name: &str, ca: &str, cert: Option<&str>| java_config(&c, name, &format!("security.protocol=SSL\n{}", certs.java(ca, cert)));

    let ends = round_trips(&c, &proxy, topic, &tls("ca", Some("client")), &java_tls("java-client", "ca", Some("client")));

    // A client that sends no certificate: rustls ends the handshake with
    // RFC 8446's certificate_required alert, the JDK's TLS (Kafka) with
    // bad_certificate; one from an unknown CA: unknown_ca against
    // certificate_unknown. Either way the client is refused.
    let (no_certificate, unknown_ca) = match c.kind() {
        Kind::Fjord => (["alert certificate required", "certificate_required"], "alert unknown ca"),
        Kind::Kafka => (["alert bad certificate", "bad_certificate"], "alert certificate unknown"),
    };
    let plaintext = vec![("security.protocol".to_string(), "PLAINTEXT".to_string())];
    let refused: [(&str, Settings, &[&str]); 4] = [
        ("plaintext to the TLS port", plaintext, &["Disconnected: connection closed by peer", "in state APIVERSION_QUERY"]),
        ("a client that does not trust the broker's CA", tls("other-ca", Some("client")), &["_SSL", "certificate verify failed"]),
        ("no client certificate", tls("ca", None), &["_TRANSPORT", no_certificate[0]]),
        // librdkafka keeps back a certificate whose CA the broker's
        // CertificateRequest does not name, so the broker gets none.
        ("a client certificate from another CA", tls("ca", Some("stranger")), &["not sending any client certificates", no_certificate[0]]),
    ];
    for (what, props, expected) in &refused {
        for action in ["produce", "consume"] {
            let ran = rdkafka(action, topic, props, 1, "refused", true);
            assert_refused(&ran, &format!("librdkafka {action}: {what}"), expected);
        }
    }
    // openssl sends the other CA's certificate all the same, then an
    // ApiVersions request, which must get no answer (stdout stays empty).
    let api_versions: [u8; 15] = [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b't'];
    let ran = run(
        Command::new("openssl")
            .args(["s_client", "-connect", BOOTSTRAP, "-servername", PROXY_HOST, "-brief", "-ign_eof", "-verify_return_error"])
            .args(["-CAfile", &certs.p("ca.pem"), "-cert", &certs.p("stranger.crt"), "-key", &certs.p("stranger.key")]),
        Some(&api_versions),
        T,
    );
    assert_refused(&ran, "openssl s_client: a client certificate from another CA", &["Verification: OK", unknown_ca]);
    assert!(ran.stdout.is_empty(), "openssl s_client: the broker answered:\n{}", ran.text());
    let java_refused = [
        (
            "a client that does not trust the broker's CA",
            java_tls("java-untrusting", "other-ca", Some("client")),
            ["SslAuthenticationException", "PKIX path building failed"],
        ),
        ("no client certificate", java_tls("java-anonymous", "ca", None), ["SslAuthenticationException", no_certificate[1]]),
    ];
    for (what, config, expected) in &java_refused {
        let ran = run(java("kafka-topics", config).arg("--list"), None, T);
        assert_refused(&ran, &format!("kafka-topics: {what}"), expected);
    }
    assert_still_serving(&mut c, topic, &tls("ca", Some("client")), &ends);
}

#[test]
fn sasl_ssl_scram_through_the_proxy() {
    let certs = Certs::make("fjord-privatelink-certs-");
    let topic = "privatelink-sasl";
    let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_string();
    let mut extra = certs.broker_settings(false);
    extra.extend(
        [
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            ("listener.name.external.scram-sha-512.sasl.jaas.config", &scram),
            ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            // The internal listener's principal: the harness, and the nodes
            // between themselves.
            ("super.users", "User:ANONYMOUS"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let (mut c, proxy) = start("SASL_SSL", extra, topic);

    // Users and ACLs over the internal listener, as an operator would.
    for (user, password) in [("alice", "alice-pl-secret"), ("bob", "bob-pl-secret")] {
        let config = format!("SCRAM-SHA-512=[password={password}]");
        let out = run_ok(
            c.tool("kafka-configs", 1).args(["--alter", "--add-config", &config, "--entity-type", "users", "--entity-name", user]),
            None,
            T,
        );
        assert!(out.contains(&format!("Completed updating config for user {user}")), "{out}");
    }
    run_ok(
        c.tool("kafka-acls", 1).args([
            "--add",
            "--allow-principal",
            "User:alice",
            "--producer",
            "--consumer",
            "--topic",
            topic,
            "--group",
            "*",
        ]),
        None,
        T,
    );

    let login = |user: &str, password: &str| {
        let mut s = vec![
            ("security.protocol".to_string(), "SASL_SSL".to_string()),
            ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
            ("sasl.username".into(), user.into()),
            ("sasl.password".into(), password.into()),
        ];
        s.extend(certs.rdkafka("ca", None));
        s
    };
    let java_login = |name: &str, user: &str, password: &str| {
        let text = format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";\n{}",
            certs.java("ca", None)
        );
        java_config(&c, name, &text)
    };
    let ends = round_trips(&c, &proxy, topic, &login("alice", "alice-pl-secret"), &java_login("java-alice", "alice", "alice-pl-secret"));

    const SCRAM_FAILED: &str = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";
    let failed_logins =
        [("a wrong password", login("alice", "wrong-pl-secret")), ("an unknown user", login("mallory", "mallory-pl-secret"))];
    for (what, props) in &failed_logins {
        for action in ["produce", "consume"] {
            let ran = rdkafka(action, topic, props, 1, "refused", true);
            assert_refused(&ran, &format!("librdkafka {action}: {what}"), &["_AUTHENTICATION", SCRAM_FAILED]);
        }
    }
    // bob logs in but may do nothing: his consumer is refused the topic or
    // the group, whichever of its requests is answered first.
    let bob = login("bob", "bob-pl-secret");
    let ran = rdkafka("produce", topic, &bob, 1, "refused", true);
    assert_refused(&ran, "librdkafka produce: a user without ACLs", &["TOPIC_AUTHORIZATION_FAILED"]);
    let ran = rdkafka("consume", topic, &bob, 1, "refused", true);
    assert_refused(&ran, "librdkafka consume: a user without ACLs", &["_AUTHORIZATION_FAILED"]);
    let java_refused = [
        ("a wrong password", java_login("java-wrong", "alice", "wrong-pl-secret"), SCRAM_FAILED),
        ("an unknown user", java_login("java-mallory", "mallory", "mallory-pl-secret"), SCRAM_FAILED),
    ];
    for (what, config, expected) in &java_refused {
        let ran = run(java("kafka-topics", config).arg("--list"), None, T);
        assert_refused(&ran, &format!("kafka-topics: {what}"), &["SaslAuthenticationException", expected]);
    }

    assert_still_serving(&mut c, topic, &login("alice", "alice-pl-secret"), &ends);
    for id in c.ids() {
        let log = fs::read_to_string(c.log_path(id)).unwrap();
        for secret in ["alice-pl-secret", "bob-pl-secret", "wrong-pl-secret", "mallory-pl-secret"] {
            assert!(!log.contains(secret), "node {id}'s log shows the password {secret:?}");
        }
    }
}
