//! What the interop and crash tests share: a broker process on a free
//! 127.0.0.1 port over a temporary data folder, and real Kafka clients run
//! with a deadline.
//!
//! The broker is `fjord`, or, with `FJORD_TEST_BROKER=kafka`, a real Apache
//! Kafka (KRaft, broker and controller in one process) from the jars in
//! `.cache/kafka-libs`, so the same tests show what Kafka itself does. The
//! clients come from `scripts/fetch-kafka.sh` and `scripts/install-test-deps.sh`
//! (see `tests/interop/README.md`); a missing one fails the test with a message
//! naming the script, never skips it.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod certs;
pub mod cluster;
pub mod eos;
pub mod groups;
pub mod s3;
pub mod wire;

const INSTALL: &str = "run `bash scripts/fetch-kafka.sh && bash scripts/install-test-deps.sh`";

/// The repository's top folder (the nearest one above this crate with `scripts/install-test-deps.sh`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|d| d.join("scripts/install-test-deps.sh").is_file()).expect("the repository above this crate").to_path_buf()
}

/// Which broker the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fjord,
    Kafka,
}

/// `FJORD_TEST_BROKER`: unset or `fjord` for fjord, `kafka` for Apache Kafka.
pub fn kind() -> Kind {
    match std::env::var("FJORD_TEST_BROKER").as_deref() {
        Err(_) | Ok("") | Ok("fjord") => Kind::Fjord,
        Ok("kafka") => Kind::Kafka,
        Ok(other) => panic!("FJORD_TEST_BROKER={other:?}: expected `fjord` or `kafka`"),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the broker binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("binding 127.0.0.1:0").port()
}

/// A broker process. Killed (SIGKILL) when dropped; if the test is failing
/// then, the tail of the broker's log is printed and its folder kept.
pub struct Broker {
    kind: Kind,
    dir: Option<TempDir>,
    port: u16,
    controller_port: u16,
    overrides: Vec<(String, String)>,
    child: Option<Child>,
    started: bool,
}

impl Broker {
    /// Starts a broker with default settings and waits until it answers.
    pub fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// Starts a broker with these `key=value` settings (`--override` for fjord,
    /// server.properties lines for Kafka) and waits until it answers.
    pub fn start_with(overrides: &[(&str, &str)]) -> Broker {
        let dir = tempfile::Builder::new().prefix("fjord-interop-").tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut b = Broker {
            kind: kind(),
            dir: Some(dir),
            port: free_port(),
            controller_port: free_port(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
            started: false,
        };
        b.launch();
        b
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn folder(&self) -> &Path {
        self.dir.as_ref().expect("broker folder").path()
    }

    /// The broker's data folder (`log.dirs`).
    pub fn data_dir(&self) -> PathBuf {
        self.folder().join("data")
    }

    /// The file that collects the broker's stdout and stderr over all its runs.
    pub fn log_path(&self) -> PathBuf {
        self.folder().join("broker.log")
    }

    /// The last `lines` lines of the broker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log_path(), lines)
    }

    fn launch(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("broker log");
        writeln!(log, "===== test harness: starting the broker on {} =====", self.bootstrap()).unwrap();
        let mut cmd = match self.kind {
            Kind::Fjord => self.fjord_command(),
            Kind::Kafka => self.kafka_command(&mut log),
        };
        cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("starting the broker {cmd:?}: {e}")));
        self.wait_ready(Duration::from_secs(90));
        self.started = true;
    }

    fn fjord_command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("start");
        cmd.args(["--override", &format!("listeners=PLAINTEXT://{}", self.bootstrap())]);
        cmd.args(["--override", &format!("log.dirs={}", self.data_dir().display())]);
        for (k, v) in &self.overrides {
            cmd.args(["--override", &format!("{k}={v}")]);
        }
        cmd
    }

    /// Writes server.properties, formats the storage on the first start, and
    /// returns the command that runs Kafka.
    fn kafka_command(&self, log: &mut File) -> Command {
        let props = self.folder().join("server.properties");
        if !self.started {
            let mut text = format!(
                "process.roles=broker,controller\n\
                 node.id=1\n\
                 controller.quorum.voters=1@127.0.0.1:{c}\n\
                 listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{p}\n\
                 controller.listener.names=CONTROLLER\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={d}\n\
                 offsets.topic.replication.factor=1\n\
                 transaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 group.initial.rebalance.delay.ms=0\n",
                p = self.port,
                c = self.controller_port,
                d = self.data_dir().display()
            );
            for (k, v) in &self.overrides {
                text.push_str(&format!("{k}={v}\n"));
            }
            fs::write(&props, text).unwrap();
            // Kafka's docs' example cluster id; each test's cluster is its own.
            let out = run(
                kafka_tool("kafka-storage").args(["format", "-t", "MkU3OEVBNTcwNTJENDM2Qg", "-c"]).arg(&props),
                None,
                Duration::from_secs(120),
            );
            writeln!(log, "{}{}", out.stdout, out.stderr).unwrap();
            assert!(out.status.success(), "formatting Kafka's storage failed:\n{}", out.text());
        }
        let mut cmd = kafka_tool("kafka-server-start");
        cmd.arg(&props).env("KAFKA_TOOL_HEAP", "1g");
        cmd
    }

    /// Waits until the broker answers an ApiVersions request on its port.
    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("the broker exited with {status} while starting; its log ends:\n{}", self.log_tail(60));
            }
            if api_versions_answered(self.port) {
                return;
            }
            if Instant::now() > deadline {
                panic!("the broker did not answer on {} within {limit:?}; its log ends:\n{}", self.bootstrap(), self.log_tail(60));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL if the broker has not exited within 30 s.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            terminate(child);
        }
    }

    /// Starts the broker again on the same port and data folder (after
    /// `kill` or `stop`), and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        // FJORD_TEST_KEEP=1 keeps every broker's folder, to read the log of a passing run.
        if std::thread::panicking() || std::env::var_os("FJORD_TEST_KEEP").is_some() {
            let dir = self.dir.take().unwrap().keep();
            eprintln!(
                "----- {:?} broker on 127.0.0.1:{}: last lines of {} -----\n{}\n----- (folder kept: {}) -----",
                self.kind,
                self.port,
                dir.join("broker.log").display(),
                tail_of(&dir.join("broker.log"), 80),
                dir.display()
            );
        }
    }
}

/// SIGTERM `child`, then SIGKILL if it has not exited within 30 s.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends ApiVersions v0 (correlation id 7) and reports whether a response came back.
pub fn api_versions_answered(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    // size, api_key 18, api_version 0, correlation_id 7, client_id "t"
    let req: [u8; 15] = [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b't'];
    let mut head = [0u8; 8];
    s.write_all(&req).is_ok() && s.read_exact(&mut head).is_ok() && head[4..8] == [0, 0, 0, 7]
}

/// What a client command did.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Exit status, stdout and stderr, for failure messages.
    pub fn text(&self) -> String {
        format!("exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `cmd` with `stdin` as its input; kills it and fails the test if it
/// is still running after `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Ran {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("running {cmd:?}: {e} ({INSTALL})"));
    let input = stdin.map(|b| b.to_vec());
    let mut pipe_in = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let (Some(p), Some(b)) = (pipe_in.as_mut(), input) {
            let _ = p.write_all(&b);
        }
        drop(pipe_in);
    });
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = read_all(Box::new(child.stdout.take().unwrap()));
    let err = read_all(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let ran = Ran { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(!timed_out, "{cmd:?} did not finish within {timeout:?}; killed it.\n{}", ran.text());
    ran
}

/// Runs `cmd` like [`run`] and returns its stdout; fails the test, showing
/// everything the command printed, unless it exits 0.
pub fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> String {
    let ran = run(cmd, stdin, timeout);
    assert!(ran.status.success(), "{cmd:?} failed.\n{}", ran.text());
    ran.stdout
}

fn require(path: &Path, what: &str) {
    assert!(path.exists(), "{what} is missing ({} not found): {INSTALL}", path.display());
}

/// One of Kafka's command-line tools by its script name (`kafka-topics`,
/// `kafka-configs`, `kafka-console-producer`, ...), through
/// `tests/interop/kafka-tool.sh`.
pub fn kafka_tool(name: &str) -> Command {
    let root = repo_root();
    require(&root.join(".cache/kafka-libs/.version"), "Kafka's jars");
    require(&root.join(".cache/interop-libs/.pom-sha256"), "the interop jars");
    assert!(on_path("java").is_some(), "java is not installed: {INSTALL}");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("tests/interop/kafka-tool.sh")).arg(name);
    cmd
}

/// `kcat` (librdkafka's command-line client).
pub fn kcat() -> Command {
    let kcat = on_path("kcat").unwrap_or_else(|| panic!("kcat is not installed: {INSTALL}"));
    Command::new(kcat)
}

/// One of the Python clients in `tests/interop/python` (`kafka_python_client.py`,
/// `confluent_client.py`), run by the venv's Python.
pub fn python(script: &str) -> Command {
    let root = repo_root();
    let py = root.join(".cache/venv/bin/python");
    require(&py, "the Python clients' venv");
    require(&root.join(".cache/venv/.installed"), "the Python clients");
    let mut cmd = Command::new(py);
    cmd.arg(root.join("tests/interop/python").join(script)).env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// The franz-go test program (`tests/interop/franz`), built by install-test-deps.sh.
pub fn franz() -> Command {
    let root = repo_root();
    let bin = root.join(".cache/bin/franz-interop");
    require(&bin, "the franz-go test program");
    let built = fs::metadata(&bin).and_then(|m| m.modified()).unwrap();
    for src in ["main.go", "go.mod", "go.sum"] {
        let changed = fs::metadata(root.join("tests/interop/franz").join(src)).and_then(|m| m.modified()).unwrap();
        assert!(changed <= built, "{} is older than tests/interop/franz/{src}: {INSTALL}", bin.display());
    }
    Command::new(bin)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// One record as the test clients print it: `partition offset key value`,
/// tab-separated.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: String,
}

/// Parses the clients' output lines; fails the test on a malformed line.
pub fn parse_records(text: &str) -> Vec<Rec> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "not a `partition offset key value` line: {l:?}");
            Rec {
                partition: f[0].parse().unwrap_or_else(|_| panic!("bad partition in {l:?}")),
                offset: f[1].parse().unwrap_or_else(|_| panic!("bad offset in {l:?}")),
                key: f[2].to_string(),
                value: f[3].to_string(),
            }
        })
        .collect()
}

/// Value `i` of a test client's `--value-prefix` / `--value-bytes` scheme.
pub fn value_of(prefix: &str, i: usize, bytes: usize) -> String {
    let mut v = format!("{prefix}{i}");
    while v.len() < bytes {
        v.push('.');
    }
    v
}

/// Fails the test unless `recs` (one partition's, in the order read) sit at
/// offsets `0, 1, 2, ...` with no hole.
pub fn assert_dense_from_zero(recs: &[Rec]) {
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "partition {} is not dense from 0: record {i} is {r:?}", r.partition);
    }
}
