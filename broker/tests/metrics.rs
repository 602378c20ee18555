//! `/metrics` and `/ready` (`metrics.listener`) and the JSON log option,
//! checked by real parts: Kafka's own producer perf test and console
//! consumer make the load, `promtool check metrics` (Debian's prometheus
//! package) checks every scrape taken under that load, and a real
//! Prometheus server scrapes the broker and answers queries about it.
//!
//! Fjord only: Apache Kafka has JMX, not this endpoint.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::groups::describe;
use support::{Broker, Kind, free_port, kafka_tool, run, run_ok, wire};

const T: Duration = Duration::from_secs(120);
const TOPIC: &str = "metrics-load";
const GROUP: &str = "metrics-group";
const RECORDS: i64 = 30_000;
const RECORD_SIZE: i64 = 100;

fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http_get(port, path).unwrap_or_else(|e| panic!("GET {path} on 127.0.0.1:{port}: {e}"))
}

fn try_http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| format!("read: {e}"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP head in {text:?}"))?;
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("bad status line: {head}"))?;
    Ok((status, body.to_string()))
}

/// The samples of a scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {l:?}"));
            (series.to_string(), value.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")))
        })
        .collect()
}

fn value(s: &BTreeMap<String, f64>, series: &str) -> f64 {
    *s.get(series).unwrap_or_else(|| panic!("no sample {series}; have:\n{}", s.keys().cloned().collect::<Vec<_>>().join("\n")))
}

/// The sum over every series of `name` whose labels contain all of `labels`.
fn sum(s: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    s.iter().filter(|(k, _)| k.split('{').next() == Some(name) && labels.iter().all(|l| k.contains(l))).map(|(_, v)| v).sum()
}

fn promtool_check(text: &str) {
    let ran = run(Command::new("promtool").args(["check", "metrics"]), Some(text.as_bytes()), T);
    assert!(ran.status.success(), "promtool check metrics refused the scrape:\n{}\n--- scrape ---\n{text}", ran.text());
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + T;
    loop {
        let (status, body) = http_get(port, "/ready");
        if status == 200 {
            assert_eq!(body, "ready\n");
            return;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "/ready still says: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_under_load_pass_promtool_and_a_prometheus_server_scrapes_them() {
    if support::kind() == Kind::Kafka {
        eprintln!("fjord only: Kafka has no /metrics endpoint");
        return;
    }
    let mport = free_port();
    let b = Broker::start_with(&[("metrics.listener", &format!("127.0.0.1:{mport}")), ("tracing.format", "json")]);
    wait_ready(mport);
    let boot = b.bootstrap();
    run_ok(kafka_tool("kafka-topics").args(["--bootstrap-server", &boot, "--create", "--topic", TOPIC, "--partitions", "3"]), None, T);

    // Scrapes taken while the producer runs, each checked by promtool.
    let loading = Arc::new(AtomicBool::new(true));
    let scraper = {
        let loading = Arc::clone(&loading);
        std::thread::spawn(move || {
            let mut scrapes = 0;
            while loading.load(Ordering::SeqCst) || scrapes == 0 {
                let (status, text) = http_get(mport, "/metrics");
                assert_eq!(status, 200, "{text}");
                promtool_check(&text);
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            scrapes
        })
    };
    run_ok(
        kafka_tool("kafka-producer-perf-test")
            .args(["--bootstrap-server", &boot, "--topic", TOPIC, "--num-records", &RECORDS.to_string()])
            .args(["--record-size", &RECORD_SIZE.to_string(), "--throughput", "-1", "--command-property", "acks=all"]),
        None,
        T,
    );
    loading.store(false, Ordering::SeqCst);
    let scrapes = scraper.join().expect("scraper");
    assert!(scrapes >= 1);

    // A group that reads a third and commits: its lag is the rest.
    run_ok(
        kafka_tool("kafka-console-consumer").args([
            "--bootstrap-server",
            &boot,
            "--topic",
            TOPIC,
            "--group",
            GROUP,
            "--from-beginning",
            "--max-messages",
            &(RECORDS / 3).to_string(),
            "--timeout-ms",
            "60000",
        ]),
        None,
        T,
    );
    let (rows, text) = describe(&b, GROUP, TOPIC);
    let tool_lag: i64 = rows.values().map(|r| r.lag.unwrap_or_else(|| panic!("no lag in:\n{text}"))).sum();
    assert!(tool_lag > 0 && tool_lag < RECORDS, "kafka-consumer-groups shows lag {tool_lag}:\n{text}");

    // A refused write: counted by its Kafka error name.
    let mut s = wire::connect(&b);
    let (code, _) = wire::produce(&mut s, "metrics-no-such-topic", wire::batch(&[b"x"]));
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    let (status, text) = http_get(mport, "/metrics");
    assert_eq!(status, 200);
    promtool_check(&text);
    let m = samples(&text);
    let topic = format!("topic=\"{TOPIC}\"");
    assert_eq!(value(&m, &format!("fjord_topic_messages_in_total{{{topic}}}")), RECORDS as f64);
    let bytes_in = value(&m, &format!("fjord_topic_bytes_in_total{{{topic}}}"));
    assert!(bytes_in >= (RECORDS * RECORD_SIZE) as f64, "bytes in {bytes_in}");
    assert!(value(&m, &format!("fjord_topic_messages_out_total{{{topic}}}")) >= (RECORDS / 3) as f64);
    assert!(value(&m, &format!("fjord_topic_bytes_out_total{{{topic}}}")) > 0.0);
    assert!(value(&m, "fjord_requests_total{api=\"Produce\"}") >= 1.0);
    assert!(value(&m, "fjord_request_duration_seconds_count{api=\"Produce\"}") >= 1.0);
    assert!(value(&m, "fjord_request_duration_seconds_count{api=\"Fetch\"}") >= 1.0);
    assert_eq!(
        value(&m, "fjord_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"),
        value(&m, "fjord_request_duration_seconds_count{api=\"Produce\"}")
    );
    assert!(value(&m, "fjord_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}") >= 1.0);
    assert!(value(&m, "fjord_raft_commit_latency_seconds_count") >= 1.0);
    // Three of the topic's and those of __consumer_offsets, all led here, none behind.
    assert!(value(&m, "fjord_leader_partitions") >= 4.0);
    assert_eq!(value(&m, "fjord_leader_partitions"), value(&m, "fjord_partitions"));
    assert_eq!(value(&m, "fjord_under_replicated_partitions"), 0.0);
    assert_eq!(value(&m, "fjord_offline_partitions"), 0.0);
    assert_eq!(value(&m, "fjord_active_controller"), 1.0);
    assert!(value(&m, "fjord_raft_elections_won_total{group=\"partition\"}") >= 4.0);
    assert!(value(&m, "fjord_raft_leader_changes_total{group=\"metadata\"}") >= 1.0);
    assert_eq!(value(&m, "fjord_consumer_groups{state=\"Empty\"}"), 1.0, "the group, its consumer gone");
    let lag = sum(&m, "fjord_consumer_group_lag", &[&format!("group=\"{GROUP}\""), &topic]);
    assert_eq!(lag as i64, tool_lag, "lag per /metrics against kafka-consumer-groups");
    assert!(value(&m, "fjord_connections_accepted_total{listener=\"PLAINTEXT\"}") >= 3.0);
    assert!(value(&m, "fjord_connections{listener=\"PLAINTEXT\"}") >= 1.0, "the wire connection is still open");
    assert!(value(&m, "process_resident_memory_bytes") > 0.0);
    drop(s);

    prometheus_scrapes(mport, b.log_path().parent().unwrap());

    // JSON logs: every line the broker wrote is one object, and the events are there.
    let log = std::fs::read_to_string(b.log_path()).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.starts_with("=====") && !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = events.iter().filter_map(|e| e["message"].as_str()).collect();
    for wanted in ["raft leader changed", "metrics on http://127.0.0.1:"] {
        assert!(messages.iter().any(|m| m.starts_with(wanted)), "no {wanted:?} in the log:\n{log}");
    }
    assert!(events.iter().all(|e| e["level"].is_string() && e["timestamp"].is_string()), "{log}");
}

/// A Prometheus server scraping the broker every second: its target is up
/// and a query returns the broker's figure.
fn prometheus_scrapes(mport: u16, dir: &Path) {
    let pport = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fjord\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"
        ),
    )
    .unwrap();
    let server = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian's package) must be installed: bash scripts/install-test-deps.sh");
    let _server = KillOnDrop(server);
    let query = |q: &str| -> Option<f64> {
        let encoded: String =
            q.bytes().map(|c| if c.is_ascii_alphanumeric() || c == b'_' { (c as char).to_string() } else { format!("%{c:02X}") }).collect();
        let mut s = TcpStream::connect(("127.0.0.1", pport)).ok()?;
        write!(s, "GET /api/v1/query?query={encoded} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let body = text.split_once("\r\n\r\n")?.1;
        // Chunked or not, the JSON object is the part between the outer braces.
        let json = &body[body.find('{')?..=body.rfind('}')?];
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = format!("fjord_topic_messages_in_total{{topic=\"{TOPIC}\"}}");
    loop {
        let up = query("up{job=\"fjord\"}");
        let records = query(&wanted);
        if up == Some(1.0) && records == Some(RECORDS as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the broker: up={up:?}, {wanted}={records:?}; its log:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_observability_setting_is_a_config_error() {
    if support::kind() == Kind::Kafka {
        return;
    }
    let fjord = env!("CARGO_BIN_EXE_fjord");
    for (key, value, says) in [
        ("tracing.format", "xml", "tracing.format"),
        ("tracing.level", "bogus===", "tracing.level"),
        ("metrics.listener", "nowhere", "metrics.listener"),
    ] {
        let ran = run(Command::new(fjord).args(["start", "--override", &format!("{key}={value}")]), None, T);
        assert_eq!(ran.status.code(), Some(2), "{key}={value}:\n{}", ran.text());
        assert!(ran.stderr.contains("config error") && ran.stderr.contains(says), "{key}={value}:\n{}", ran.text());
    }
    // The port taken: a start-up failure naming the setting, before any data is touched.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ran = run(
        Command::new(fjord).args([
            "start",
            "--override",
            &format!("metrics.listener=127.0.0.1:{port}"),
            "--override",
            &format!("log.dirs={}", dir.path().join("data").display()),
            "--override",
            &format!("listeners=PLAINTEXT://127.0.0.1:{}", free_port()),
        ]),
        None,
        T,
    );
    assert!(!ran.status.success(), "{}", ran.text());
    assert!(ran.stderr.contains("metrics.listener"), "{}", ran.text());
}

/// One scrape of node `port`, or `None` while it does not answer.
fn scrape(port: u16) -> Option<BTreeMap<String, f64>> {
    try_http_get(port, "/metrics").ok().filter(|(s, _)| *s == 200).map(|(_, text)| samples(&text))
}

/// The sum of one gauge over the nodes that answer.
fn cluster_sum(ports: &[u16], series: &str) -> f64 {
    ports.iter().filter_map(|p| scrape(*p)).map(|m| m.get(series).copied().unwrap_or(0.0)).sum()
}

/// Leaders, under-replicated and offline partitions across a 3-node cluster
/// as Kafka's ReplicaManager and controller gauges report them: a killed
/// broker's partitions become under-replicated on their new leaders (once
/// the controller fences it, as Kafka shrinks the ISR), none goes offline,
/// and the broker's return clears it.
#[test]
fn replica_gauges_follow_a_killed_broker() {
    use support::cluster::{Cluster, Role};
    if support::kind() == Kind::Kafka {
        return;
    }
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let by_node = ports.clone();
    let edit: support::cluster::NodeSettings =
        Box::new(move |id, s| s.push(("metrics.listener".into(), format!("127.0.0.1:{}", by_node[id as usize - 1]))));
    let mut c = Cluster::start_layout(
        &[(Role::Combined, 3)],
        &[("broker.session.timeout.ms", "4000"), ("broker.heartbeat.interval.ms", "500"), ("auto.leader.rebalance.enable", "false")],
        Some(edit),
    );
    let topic = "metrics-replicas";
    let out = c.topics(1, &["--create", "--topic", topic, "--partitions", "6", "--replication-factor", "3"]);
    assert!(out.contains("Created topic"), "{out}");
    c.wait_topic(1, topic, "all in sync", Duration::from_secs(60), |v| v.len() == 6 && v.values().all(|p| p.isr.len() == 3));
    let wait = |what: &str, ports: &[u16], ok: &dyn Fn(&[u16]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok(ports) {
            let seen: Vec<String> = ports
                .iter()
                .map(|p| {
                    let m = scrape(*p).unwrap_or_default();
                    let g = |k: &str| m.get(k).copied().unwrap_or(-1.0);
                    format!(
                        "port {p}: leaders {} urp {} offline {} controller {}",
                        g("fjord_leader_partitions"),
                        g("fjord_under_replicated_partitions"),
                        g("fjord_offline_partitions"),
                        g("fjord_active_controller")
                    )
                })
                .collect();
            assert!(Instant::now() < deadline, "waiting for {what}; the nodes say:\n{}", seen.join("\n"));
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait("6 leaders, nothing under-replicated, one controller", &ports, &|p| {
        cluster_sum(p, "fjord_leader_partitions") == 6.0
            && cluster_sum(p, "fjord_under_replicated_partitions") == 0.0
            && cluster_sum(p, "fjord_active_controller") == 1.0
            && p.iter().all(|port| scrape(*port).is_some_and(|m| m.get("fjord_partitions") == Some(&6.0)))
    });

    c.kill(3);
    let alive = &ports[..2];
    wait("every partition led by nodes 1-2 and under-replicated, none offline", alive, &|p| {
        cluster_sum(p, "fjord_leader_partitions") == 6.0
            && cluster_sum(p, "fjord_under_replicated_partitions") == 6.0
            && cluster_sum(p, "fjord_under_min_isr_partitions") == 0.0
            && cluster_sum(p, "fjord_offline_partitions") == 0.0
            && cluster_sum(p, "fjord_active_controller") == 1.0
    });

    c.restart(3);
    wait("node 3 back in sync", &ports, &|p| {
        cluster_sum(p, "fjord_leader_partitions") == 6.0 && cluster_sum(p, "fjord_under_replicated_partitions") == 0.0
    });
    let m = scrape(ports[2]).expect("node 3 answers");
    assert_eq!(m.get("fjord_partitions"), Some(&6.0));
    assert!(sum(&m, "fjord_raft_leader_changes_total", &[]) >= 1.0, "node 3 saw leaders");
}
