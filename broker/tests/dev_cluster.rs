//! `fjord dev-cluster` as a test harness drives it: N broker processes come
//! up on consecutive ports and the bootstrap line appears on stdout; a broker
//! killed with SIGKILL is reported (once, not restarted) while the others keep
//! answering; SIGINT stops everything and exits 0. A port in use or a bad flag
//! fails before anything starts. Only process management is checked here, not
//! whether the brokers form one cluster.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

mod support;

/// A base port with base..base+3 and base+1000..base+1003 free. Chosen in
/// 20000..30000, below Linux's ephemeral range, so outgoing connections do not
/// take the ports between this check and the brokers binding them.
fn free_base() -> u16 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    let seed = u64::from(std::process::id()) * 31 + nanos + CALLS.fetch_add(1, Ordering::Relaxed) * 4001;
    for attempt in 0..500u64 {
        let base = 20000 + ((seed + attempt * 7919) % 9990) as u16;
        if (0..3).chain(1000..1003).all(|o| TcpListener::bind(("127.0.0.1", base + o)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range found in 20000..31000");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Live children of `pid` (Linux: /proc/<pid>/task/<tid>/children, all threads).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    out.sort();
    out
}

/// Whether `pid` is still a process (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// A running `fjord dev-cluster`. On drop, it and its brokers are killed,
/// and, if the test is failing, the end of its stderr is printed.
struct DevCluster {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl DevCluster {
    fn start(args: &[String]) -> DevCluster {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .arg("dev-cluster")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning fjord dev-cluster");
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, lines) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        DevCluster { child, stdout, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The first stderr line that `pred` accepts, waiting up to `limit`.
    fn wait_stderr(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.stderr.lock().unwrap().iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit; `None` if it is still running after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        for pid in children(self.pid()) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.stderr.lock().unwrap();
            eprintln!("----- fjord dev-cluster stderr (last 150 lines) -----\n{}", lines[lines.len().saturating_sub(150)..].join("\n"));
        }
    }
}

/// The pid of broker `id` from the ready summary (`broker 2: port ..., pid 1234, data ...`).
fn broker_pid(dc: &DevCluster, id: u16) -> u32 {
    let tag = format!("broker {id}: port ");
    let line = dc
        .wait_stderr(Duration::from_secs(5), |l| l.starts_with("dev-cluster:") && l.contains(&tag) && l.contains(", pid "))
        .unwrap_or_else(|| panic!("no summary line for broker {id}"));
    let after = line.split(", pid ").nth(1).unwrap();
    after.split(',').next().unwrap().trim().parse().unwrap_or_else(|_| panic!("no pid in {line:?}"))
}

#[test]
fn three_brokers_survive_a_sigkill_and_stop_on_sigint() {
    let base = free_base();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("dc");
    let args: Vec<String> = [
        "--brokers",
        "3",
        "--racks",
        "az1,az2,az3",
        "--base-port",
        &base.to_string(),
        "--controller-base-port",
        &(base + 1000).to_string(),
        "--data",
        data.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut dc = DevCluster::start(&args);

    // The bootstrap line, once every broker answers.
    let deadline = Instant::now() + Duration::from_secs(150);
    let bootstrap = loop {
        match dc.stdout.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => break line,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("dev-cluster closed stdout without a bootstrap line"),
        }
        if let Some(status) = dc.child.try_wait().unwrap() {
            panic!("dev-cluster exited with {status} before it was ready");
        }
        assert!(Instant::now() < deadline, "no bootstrap line within 150 s");
    };
    assert_eq!(bootstrap, format!("bootstrap.servers=127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}", base, base + 1, base + 2));
    for p in base..base + 3 {
        assert!(support::api_versions_answered(p), "port {p} does not answer ApiVersions");
    }
    for i in 1..=3 {
        let dir = data.join(format!("broker-{i}"));
        assert!(dir.is_dir(), "{} missing", dir.display());
        assert!(dir.join("broker.log").is_file(), "{}/broker.log missing", dir.display());
    }
    // The summary follows the bootstrap line on the other stream.
    let pids: Vec<u32> = (1..=3).map(|i| broker_pid(&dc, i)).collect();
    for (i, rack) in [(1, "az1"), (2, "az2"), (3, "az3")] {
        let tag = format!("broker {i}: port {}, controller port {}, rack {rack}, pid ", base + i - 1, base + 999 + i);
        assert!(dc.stderr_text().contains(&tag), "summary lacks {tag:?}");
    }
    let mut sorted = pids.clone();
    sorted.sort();
    assert_eq!(children(dc.pid()), sorted, "the brokers are dev-cluster's children");

    // SIGKILL broker 2: reported once, not restarted, the others unaffected.
    signal(pids[1], "KILL");
    let want = format!("dev-cluster: broker 2 (pid {}) exited with signal 9 (SIGKILL); not restarting", pids[1]);
    assert!(dc.wait_stderr(Duration::from_secs(10), |l| l == want).is_some(), "expected {want:?} within 10 s");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(children(dc.pid()), vec![pids[0].min(pids[2]), pids[0].max(pids[2])], "broker 2 must not be restarted");
    assert_eq!(dc.stderr_text().matches("not restarting").count(), 1, "reported once");
    assert!(support::api_versions_answered(base) && support::api_versions_answered(base + 2), "brokers 1 and 3 still answer");
    assert!(dc.child.try_wait().unwrap().is_none(), "dev-cluster keeps running with two brokers");

    // SIGINT, with broker 3 frozen by SIGSTOP: every broker stopped, exit 0.
    signal(pids[2], "STOP");
    signal(dc.pid(), "INT");
    let status = dc.wait_exit(Duration::from_secs(40)).expect("dev-cluster still running 40 s after SIGINT");
    assert!(status.success(), "dev-cluster exited with {status}");
    for (i, pid) in pids.iter().enumerate() {
        assert!(!alive(*pid), "broker {} (pid {pid}) outlived dev-cluster", i + 1);
        assert!(dc.stderr_text().contains(&format!("broker {} (pid {pid}) ", i + 1)), "no stop report for broker {}", i + 1);
    }
    assert!(dc.stderr_text().contains(&format!("broker 2 (pid {}) had already exited with signal 9", pids[1])));
    for p in base..base + 3 {
        assert!(TcpListener::bind(("127.0.0.1", p)).is_ok(), "port {p} still held after dev-cluster exited");
    }
}

/// Runs a dev-cluster that must fail at once; returns (exit code, stderr).
fn fails(args: &[String]) -> (Option<i32>, String) {
    let mut dc = DevCluster::start(args);
    let status = dc.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("dev-cluster {args:?} kept running"));
    // Nothing started: the stderr reader ends with the process.
    std::thread::sleep(Duration::from_millis(100));
    assert!(dc.stdout.try_recv().is_err(), "no bootstrap line on a failure");
    (status.code(), dc.stderr_text())
}

#[test]
fn a_port_in_use_or_a_bad_flag_fails_before_starting() {
    let base = free_base();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("dc");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["--brokers", "3", "--base-port", &base.to_string(), "--controller-base-port", &(base + 1000).to_string(), "--data"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        a.push(data.to_str().unwrap().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    for busy in [base + 1, base + 1002] {
        let taken = TcpListener::bind(("127.0.0.1", busy)).unwrap();
        let (code, err) = fails(&args(&[]));
        assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {err}");
        assert!(err.contains(&busy.to_string()), "the message names port {busy}: {err}");
        assert!(!Path::new(&data).join("broker-1").exists(), "nothing is created when a port is busy");
        drop(taken);
    }

    for (extra, needle) in
        [(&["--controllers", "4"][..], "--controllers"), (&["--racks", "az1,,az3"], "--racks"), (&["--override", "novalue"], "--override")]
    {
        let (code, err) = fails(&args(extra));
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let (code, err) = fails(&["--brokers".to_string(), "0".to_string()]);
    assert_eq!(code, Some(2), "{err}");
}
