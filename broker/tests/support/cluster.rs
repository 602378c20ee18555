//! A cluster of broker processes on 127.0.0.1 for the cluster tests. Each
//! node has a [`Role`]: with [`Cluster::start`], nodes 1..=C are brokers and
//! controllers (`controller.quorum.voters` names them) and nodes C+1.. are
//! brokers only; with [`Cluster::start_separate`], nodes 1..=C are
//! controllers only (no client port) and the brokers follow. Node `i` is on
//! rack `az<i>`. Each node has
//! its own folder (data, `server.properties` for Kafka, and `node.log`, its
//! stdout and stderr over all its runs).
//!
//! The nodes are `fjord` processes, or, with `FJORD_TEST_BROKER=kafka`, Apache
//! Kafka's (KRaft with a static quorum, every node's storage formatted with
//! one cluster id). A node can be killed (SIGKILL), stopped (SIGTERM) and
//! started again on the same ports and data. When the `Cluster` is dropped
//! every node is killed; if the test is failing, the end of each node's log
//! is printed and the folder kept.
//!
//! One cluster runs at a time in a test binary ([`Cluster::start`] waits for
//! the one before to be dropped): each is several processes, the tools are
//! JVMs, the machine has two cores, and the tests wait on timeouts
//! (broker sessions, raft elections) that starved processes would miss.
//!
//! Besides the processes: raw Metadata and Produce requests to one node, the
//! replica view of a topic from Metadata or from `kafka-topics --describe`,
//! end offsets from `kafka-get-offsets`, and Python snippets run by the
//! interop venv's interpreter.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tempfile::TempDir;

use super::groups::{T, wait_for};
use super::{Kind, api_versions_answered, kafka_tool, kind, repo_root, run, run_ok, tail_of, wire};

/// Kafka's docs' example cluster id; each test's cluster is its own.
const KAFKA_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

/// One cluster at a time per test binary (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What a node runs (`process.roles`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `broker,controller`
    Combined,
    /// `controller`: a metadata quorum voter with no client listener.
    Controller,
    /// `broker`
    Broker,
}

impl Role {
    fn is_broker(self) -> bool {
        self != Role::Controller
    }
}

/// Changes one node's settings (Kafka's names) before it starts, e.g. to
/// add a listener; it is called again at every restart.
pub type NodeSettings = Box<dyn Fn(i32, &mut Vec<(String, String)>) + Send>;

struct Node {
    id: i32,
    role: Role,
    /// The client (PLAINTEXT) port; a controller-only node has none.
    port: Option<u16>,
    /// The CONTROLLER listener's port, for the quorum's voters.
    controller_port: Option<u16>,
    child: Option<Child>,
}

/// A running cluster; see the module docs.
pub struct Cluster {
    kind: Kind,
    dir: Option<TempDir>,
    nodes: Vec<Node>,
    overrides: Vec<(String, String)>,
    edit: Option<NodeSettings>,
    // Declared last: released after `drop` has killed the nodes.
    _turn: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts `controllers` broker+controller nodes and `brokers_only` more
    /// broker nodes with these extra settings (Kafka's names; for fjord also
    /// its own), and waits until every node's Metadata lists every node.
    pub fn start(controllers: usize, brokers_only: usize, overrides: &[(&str, &str)]) -> Cluster {
        Self::start_layout(&[(Role::Combined, controllers), (Role::Broker, brokers_only)], overrides, None)
    }

    /// Starts `controllers` controller-only nodes (ids 1..) and `brokers`
    /// broker-only nodes after them, as [`Self::start`] does.
    pub fn start_separate(controllers: usize, brokers: usize, overrides: &[(&str, &str)]) -> Cluster {
        Self::start_layout(&[(Role::Controller, controllers), (Role::Broker, brokers)], overrides, None)
    }

    /// Starts nodes of these roles, in this order (ids from 1), with these
    /// settings for all and `edit` for each; waits until every broker's
    /// Metadata lists every broker.
    pub fn start_layout(layout: &[(Role, usize)], overrides: &[(&str, &str)], edit: Option<NodeSettings>) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::Builder::new().prefix("fjord-cluster-").tempdir().expect("tempdir");
        // Distinct ports: the OS may hand out a port again once its probe
        // listener is closed.
        let mut taken = BTreeSet::new();
        let mut port = || loop {
            let p = super::free_port();
            if taken.insert(p) {
                return p;
            }
        };
        let roles = layout.iter().flat_map(|(role, n)| std::iter::repeat_n(*role, *n));
        let nodes = roles
            .enumerate()
            .map(|(i, role)| Node {
                id: i as i32 + 1,
                role,
                port: role.is_broker().then(&mut port),
                controller_port: (role != Role::Broker).then(&mut port),
                child: None,
            })
            .collect();
        let mut c = Cluster {
            kind: kind(),
            dir: Some(dir),
            nodes,
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            edit,
            _turn: turn,
        };
        for id in c.ids() {
            fs::create_dir_all(c.data_dir(id)).unwrap();
        }
        if c.kind == Kind::Kafka {
            c.format_kafka_storage();
        }
        let started = Instant::now();
        for id in c.ids() {
            c.spawn(id);
        }
        for id in c.ids() {
            c.wait_answers(id);
        }
        c.wait_formed();
        eprintln!(
            "cluster of {} {:?} nodes up in {:?}: brokers {}, voters {}",
            c.nodes.len(),
            c.kind,
            started.elapsed(),
            c.bootstrap(),
            c.voters()
        );
        c
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Every node's id, running or not.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The ids of the nodes that are brokers (serve clients).
    pub fn broker_ids(&self) -> Vec<i32> {
        self.nodes.iter().filter(|n| n.role.is_broker()).map(|n| n.id).collect()
    }

    /// The ids of the metadata quorum's voters.
    pub fn voter_ids(&self) -> Vec<i32> {
        self.nodes.iter().filter(|n| n.controller_port.is_some()).map(|n| n.id).collect()
    }

    pub fn role(&self, id: i32) -> Role {
        self.node(id).role
    }

    /// The ids of the nodes whose process is running.
    pub fn running(&mut self) -> Vec<i32> {
        self.ids().into_iter().filter(|&id| self.is_running(id)).collect()
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Node `id`'s client (PLAINTEXT) port; panics for a controller-only node.
    pub fn port(&self, id: i32) -> u16 {
        self.node(id).port.unwrap_or_else(|| panic!("node {id} is a controller only: it has no client port"))
    }

    /// Node `id`'s CONTROLLER listener port, if it is a voter.
    pub fn controller_port(&self, id: i32) -> Option<u16> {
        self.node(id).controller_port
    }

    /// `127.0.0.1:<port>` of node `id`.
    pub fn bootstrap_of(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.port(id))
    }

    /// Every broker's address, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.broker_ids().iter().map(|&id| self.bootstrap_of(id)).collect::<Vec<_>>().join(",")
    }

    /// The addresses of these nodes, comma-separated.
    pub fn bootstrap_of_all(&self, ids: &[i32]) -> String {
        ids.iter().map(|&id| self.bootstrap_of(id)).collect::<Vec<_>>().join(",")
    }

    pub fn rack(&self, id: i32) -> String {
        format!("az{id}")
    }

    /// The cluster's folder (for files the tools read).
    pub fn folder(&self) -> &Path {
        self.dir.as_ref().expect("cluster folder").path()
    }

    fn node_dir(&self, id: i32) -> PathBuf {
        self.folder().join(format!("node-{id}"))
    }

    /// Node `id`'s `log.dirs`.
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.node_dir(id).join("data")
    }

    pub fn log_path(&self, id: i32) -> PathBuf {
        self.node_dir(id).join("node.log")
    }

    pub fn log_tail(&self, id: i32, lines: usize) -> String {
        tail_of(&self.log_path(id), lines)
    }

    /// `controller.quorum.voters`: the same for every node.
    fn voters(&self) -> String {
        self.nodes.iter().filter_map(|n| n.controller_port.map(|c| format!("{}@127.0.0.1:{c}", n.id))).collect::<Vec<_>>().join(",")
    }

    /// Every setting of node `id`, Kafka's names first, then the test's.
    fn settings(&self, id: i32) -> Vec<(String, String)> {
        let n = self.node(id);
        let (roles, listeners) = match (n.role, n.port, n.controller_port) {
            (Role::Combined, Some(p), Some(c)) => ("broker,controller", format!("PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}")),
            (Role::Controller, None, Some(c)) => ("controller", format!("CONTROLLER://127.0.0.1:{c}")),
            (Role::Broker, Some(p), None) => ("broker", format!("PLAINTEXT://127.0.0.1:{p}")),
            other => unreachable!("node {id}: {other:?}"),
        };
        // Internal topics as replicated as the combined nodes allow (the
        // brokers with a separate quorum), at most 3.
        let combined = self.nodes.iter().filter(|n| n.role == Role::Combined).count();
        let rf = if combined > 0 { combined } else { self.broker_ids().len() }.min(3);
        let mut s: Vec<(String, String)> = vec![
            ("node.id".into(), id.to_string()),
            ("process.roles".into(), roles.into()),
            ("listeners".into(), listeners),
            ("controller.listener.names".into(), "CONTROLLER".into()),
            ("listener.security.protocol.map".into(), "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into()),
            ("controller.quorum.voters".into(), self.voters()),
            ("log.dirs".into(), self.data_dir(id).display().to_string()),
            ("offsets.topic.replication.factor".into(), rf.to_string()),
            ("transaction.state.log.replication.factor".into(), rf.to_string()),
            ("transaction.state.log.min.isr".into(), rf.min(2).to_string()),
            ("group.initial.rebalance.delay.ms".into(), "0".into()),
        ];
        if n.role.is_broker() {
            s.push(("broker.rack".into(), self.rack(id)));
        }
        match self.kind {
            Kind::Fjord => {
                for (k, v) in [
                    ("raft.heartbeat.interval.ms", "100"),
                    ("raft.election.timeout.ms", "600"),
                    ("raft.election.timeout.max.ms", "1200"),
                    ("raft.transport.linger.ms", "5"),
                ] {
                    s.push((k.into(), v.into()));
                }
            }
            Kind::Kafka => {
                if let Some(p) = n.port {
                    s.push(("advertised.listeners".into(), format!("PLAINTEXT://127.0.0.1:{p}")));
                    s.push(("inter.broker.listener.name".into(), "PLAINTEXT".into()));
                }
            }
        }
        s.extend(self.overrides.iter().cloned());
        if let Some(edit) = &self.edit {
            edit(id, &mut s);
        }
        s
    }

    fn props_path(&self, id: i32) -> PathBuf {
        self.node_dir(id).join("server.properties")
    }

    /// Writes every node's server.properties and formats its storage with
    /// the one cluster id (a JVM per node, run side by side).
    fn format_kafka_storage(&mut self) {
        let mut jobs = Vec::new();
        for id in self.ids() {
            let text: String = self.settings(id).iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let props = self.props_path(id);
            fs::write(&props, text).unwrap();
            let log = self.log_path(id);
            jobs.push(std::thread::spawn(move || {
                let out = run(
                    kafka_tool("kafka-storage").args(["format", "-t", KAFKA_CLUSTER_ID, "-c"]).arg(&props),
                    None,
                    Duration::from_secs(120),
                );
                let mut f = OpenOptions::new().create(true).append(true).open(&log).unwrap();
                writeln!(f, "{}{}", out.stdout, out.stderr).unwrap();
                assert!(out.status.success(), "formatting Kafka's storage of {} failed:\n{}", props.display(), out.text());
            }));
        }
        for j in jobs {
            j.join().expect("kafka-storage format");
        }
    }

    fn spawn(&mut self, id: i32) {
        assert!(self.node(id).child.is_none(), "node {id} is already running");
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path(id)).expect("node log");
        writeln!(log, "===== test harness: starting node {id} ({:?}) =====", self.node(id).role).unwrap();
        let mut cmd = match self.kind {
            Kind::Fjord => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
                cmd.arg("start");
                for (k, v) in self.settings(id) {
                    cmd.args(["--override", &format!("{k}={v}")]);
                }
                cmd
            }
            Kind::Kafka => {
                let mut cmd = kafka_tool("kafka-server-start");
                cmd.arg(self.props_path(id)).env("KAFKA_TOOL_HEAP", "512m");
                cmd
            }
        };
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting node {id} ({cmd:?}): {e}"));
        self.node_mut(id).child = Some(child);
    }

    /// Waits until node `id` answers ApiVersions (a controller only: accepts
    /// on its CONTROLLER port); fails if it exits.
    fn wait_answers(&mut self, id: i32) {
        let limit = match self.kind {
            Kind::Fjord => Duration::from_secs(60),
            Kind::Kafka => Duration::from_secs(150),
        };
        let deadline = Instant::now() + limit;
        loop {
            let (port, role) = (self.node(id).port.or(self.node(id).controller_port).expect("a port"), self.node(id).role);
            let node = self.node_mut(id);
            if let Some(status) = node.child.as_mut().expect("a running node").try_wait().unwrap() {
                node.child = None;
                panic!("node {id} exited with {status} while starting; its log ends:\n{}", self.log_tail(id, 60));
            }
            let up = match role {
                Role::Controller => TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).is_ok(),
                _ => api_versions_answered(port),
            };
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not answer on port {port} within {limit:?}; its log ends:\n{}",
                self.log_tail(id, 60)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the Metadata of every running broker lists exactly the
    /// running brokers (registered, not fenced).
    pub fn wait_formed(&mut self) {
        let running: Vec<i32> = self.running().into_iter().filter(|id| self.node(*id).role.is_broker()).collect();
        wait_for(&format!("every running node's Metadata to list nodes {running:?}"), Duration::from_secs(90), || {
            running
                .iter()
                .all(|&id| self.brokers_seen(id).is_some_and(|b| b.iter().map(|b| b.id).collect::<Vec<_>>() == running))
                .then_some(())
        });
    }

    /// SIGKILL node `id`, and wait for the process to be gone.
    pub fn kill(&mut self, id: i32) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM node `id`, then SIGKILL if it has not exited within 30 s.
    pub fn stop(&mut self, id: i32) {
        if let Some(child) = self.node_mut(id).child.take() {
            super::terminate(child);
        }
    }

    /// Starts node `id` again (after `kill` or `stop`) on its ports and data,
    /// and waits until every running node lists it again.
    pub fn restart(&mut self, id: i32) {
        self.kill(id);
        self.spawn(id);
        self.wait_answers(id);
        self.wait_formed();
    }

    pub fn is_running(&mut self, id: i32) -> bool {
        self.node_mut(id).child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    // -----------------------------------------------------------------------
    // raw requests

    /// A connection to node `id`, or `None` if it does not accept one.
    pub fn connect(&self, id: i32) -> Option<TcpStream> {
        let s = TcpStream::connect_timeout(&([127, 0, 0, 1], self.port(id)).into(), Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(15))).ok()?;
        Some(s)
    }

    /// Metadata v12 from node `id` for these topics (`None`: all topics),
    /// or `None` if the node does not answer.
    pub fn metadata(&self, id: i32, topics: Option<&[&str]>) -> Option<MetadataResponse> {
        let mut s = self.connect(id)?;
        let req = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.to_string())))))
                .collect()
        }));
        // read_response panics on a closed connection; a node going down is
        // an answer of `None` here.
        wire::send_request(&mut s, ApiKey::Metadata, 12, &req);
        let mut probe = [0u8; 4];
        if s.peek(&mut probe).ok()? < 4 {
            return None;
        }
        Some(wire::read_response(&mut s, ApiKey::Metadata, 12))
    }

    /// The brokers node `id`'s Metadata lists, by id.
    pub fn brokers_seen(&self, id: i32) -> Option<Vec<BrokerSeen>> {
        let resp = self.metadata(id, Some(&[]))?;
        let mut v: Vec<BrokerSeen> = resp
            .brokers
            .iter()
            .map(|b| BrokerSeen { id: b.node_id.0, host: b.host.to_string(), port: b.port, rack: b.rack.as_ref().map(|r| r.to_string()) })
            .collect();
        v.sort_by_key(|b| b.id);
        Some(v)
    }

    /// `topic` as node `id`'s Metadata shows it; `None` if the node does not
    /// answer or reports an error for the topic.
    pub fn topic_view(&self, id: i32, topic: &str) -> Option<TopicView> {
        let resp = self.metadata(id, Some(&[topic]))?;
        let t = resp.topics.first()?;
        if t.error_code != 0 {
            return None;
        }
        Some(
            t.partitions
                .iter()
                .map(|p| {
                    let view = PartitionView {
                        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    };
                    (p.partition_index, view)
                })
                .collect(),
        )
    }

    /// Polls node `id`'s Metadata for `topic` until `ok` holds, at most
    /// `limit`; returns the view. The failure message has the last view.
    pub fn wait_topic(&self, id: i32, topic: &str, what: &str, limit: Duration, ok: impl Fn(&TopicView) -> bool) -> TopicView {
        let deadline = Instant::now() + limit;
        let mut last = None;
        loop {
            if let Some(v) = self.topic_view(id, topic) {
                if ok(&v) {
                    return v;
                }
                last = Some(v);
            }
            assert!(Instant::now() < deadline, "waited {limit:?} for {what} (Metadata of {topic} from node {id}); last seen:\n{last:#?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One Produce (v9, acks=all) of `records` to partition `partition` of
    /// `topic` on node `id`; (error code, base offset).
    pub fn produce_to(&self, id: i32, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
        self.produce_acks(id, topic, partition, records, -1)
    }

    /// [`Self::produce_to`] with `acks` (1 or -1).
    pub fn produce_acks(&self, id: i32, topic: &str, partition: i32, records: Bytes, acks: i16) -> (i16, i64) {
        let mut s = self.connect(id).unwrap_or_else(|| panic!("node {id} does not accept connections"));
        let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))]),
        ]);
        let resp: ProduceResponse = wire::request(&mut s, ApiKey::Produce, 9, &req);
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.index, partition, "a Produce answer for another partition: {resp:?}");
        (p.error_code, p.base_offset)
    }

    // -----------------------------------------------------------------------
    // Kafka's tools

    /// Kafka tool `name` with `--bootstrap-server` node `id`.
    pub fn tool(&self, name: &str, id: i32) -> Command {
        let mut cmd = kafka_tool(name);
        cmd.args(["--bootstrap-server", &self.bootstrap_of(id)]);
        cmd
    }

    /// `kafka-topics --bootstrap-server <node id> <args>`; fails unless it exits 0.
    pub fn topics(&self, id: i32, args: &[&str]) -> String {
        run_ok(self.tool("kafka-topics", id).args(args), None, T)
    }

    /// `kafka-topics --describe --topic <topic>` through node `id`, parsed.
    pub fn describe(&self, id: i32, topic: &str) -> TopicView {
        let out = self.topics(id, &["--describe", "--topic", topic]);
        parse_describe(&out, topic)
    }

    /// `kafka-get-offsets` (latest) of `topic` through node `id`, by partition.
    pub fn end_offsets(&self, id: i32, topic: &str) -> BTreeMap<i32, i64> {
        let out = run_ok(self.tool("kafka-get-offsets", id).args(["--topic", topic]), None, T);
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut f = l.trim().rsplitn(3, ':');
                let (o, p, t) = (f.next(), f.next(), f.next());
                assert_eq!(t, Some(topic), "unexpected kafka-get-offsets line {l:?} in:\n{out}");
                let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok()).unwrap_or_else(|| panic!("bad line {l:?} in:\n{out}"));
                (num(p) as i32, num(o))
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
        if std::thread::panicking() {
            for id in self.ids() {
                let n = self.node(id);
                eprintln!(
                    "----- {:?} node {id} ({:?}, port {:?}, controller port {:?}): last lines of {} -----\n{}",
                    self.kind,
                    n.role,
                    n.port,
                    n.controller_port,
                    self.log_path(id).display(),
                    self.log_tail(id, 60)
                );
            }
            let dir = self.dir.take().unwrap().keep();
            eprintln!("----- (cluster folder kept: {}) -----", dir.display());
        }
    }
}

/// A broker as a Metadata response lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSeen {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// One partition's leader (`None`: no leader), replicas in order, and ISR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl PartitionView {
    /// The ISR as a sorted list.
    pub fn isr_sorted(&self) -> Vec<i32> {
        let mut v = self.isr.clone();
        v.sort_unstable();
        v
    }
}

/// A topic's partitions by index.
pub type TopicView = BTreeMap<i32, PartitionView>;

/// Reads `kafka-topics --describe` of one topic: the partition lines,
/// tab-separated `Key: value` fields (`Topic`, `Partition`, `Leader`,
/// `Replicas`, `Isr`, ...), `Leader: none` when there is no leader.
pub fn parse_describe(out: &str, topic: &str) -> TopicView {
    let mut view = TopicView::new();
    for line in out.lines() {
        let fields: BTreeMap<&str, &str> = line.split('\t').filter_map(|f| f.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let Some(p) = fields.get("Partition") else { continue };
        assert_eq!(fields.get("Topic"), Some(&topic), "a line of another topic: {line:?} in:\n{out}");
        let p: i32 = p.parse().unwrap_or_else(|_| panic!("bad partition in {line:?}"));
        let ids = |k: &str| -> Vec<i32> {
            let v = fields.get(k).unwrap_or_else(|| panic!("no {k} in {line:?}"));
            v.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or_else(|_| panic!("bad {k} in {line:?}"))).collect()
        };
        let leader = match *fields.get("Leader").unwrap_or_else(|| panic!("no Leader in {line:?}")) {
            "none" | "-1" => None,
            l => Some(l.parse().unwrap_or_else(|_| panic!("bad Leader in {line:?}"))),
        };
        view.insert(p, PartitionView { leader, replicas: ids("Replicas"), isr: ids("Isr") });
    }
    assert!(!view.is_empty(), "no partition lines for {topic} in:\n{out}");
    view
}

/// The interop venv's Python running `code` (`python -c`); arguments follow
/// as `sys.argv[1:]`. Its output is unbuffered, so a background run's file
/// shows each line as it is printed.
pub fn py(code: &str) -> Command {
    let python = repo_root().join(".cache/venv/bin/python");
    assert!(python.exists(), "the Python clients' venv is missing: run `bash scripts/install-test-deps.sh`");
    let mut cmd = Command::new(python);
    cmd.args(["-c", code]).env("PYTHONUNBUFFERED", "1").env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}
