//! Randomized fault runs on a 3-broker cluster, each checked for lost,
//! moved, duplicated and truncated records: `tests/cluster/faults.py` (driver,
//! see its docstring) with `tests/cluster/checker.py` (the checker), run by the
//! venv's Python against the `fjord` binary this crate builds.
//!
//! - `checker_self_test`: the checker reports fabricated lost, changed,
//!   duplicated, truncated ... histories (`tests/cluster/test_checker.py`);
//! - `faults_loopback`: 20 runs (`FJORD_FAULT_RUNS`) of SIGKILL, SIGSTOP and
//!   rolling restarts, brokers on 127.0.0.1;
//! - `faults_netns`: 6 runs (`FJORD_FAULT_NETNS_RUNS`) of isolating a leader,
//!   cutting it off from its peers only, and a slow lossy link, each broker in
//!   a network namespace of its own (root and iproute2 needed;
//!   `FJORD_FAULT_NETNS_RUNS=0` leaves it out).
//!
//! `FJORD_FAULT_SEED` fixes the seed (printed by every run otherwise),
//! `FJORD_FAULT_TIME_BUDGET` (seconds) stops starting runs after that long.
//! `FJORD_TEST_BROKER=kafka` runs all of it against Apache Kafka 4.4 (KRaft)
//! from `.cache/kafka-libs`, which is how the checker was shown to be right.
//! The tests run one at a time (each starts three brokers on two cores).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Kind, kind, repo_root};

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?}: expected a number")),
        _ => default,
    }
}

/// The venv's Python running `tests/cluster/<script>`.
fn python(script: &str) -> Command {
    let root = repo_root();
    let py = root.join(".cache/venv/bin/python");
    assert!(
        py.exists() && root.join(".cache/venv/.installed").exists(),
        "the Python clients' venv is missing ({} not found): run `bash scripts/fetch-kafka.sh && bash scripts/install-test-deps.sh`",
        py.display()
    );
    let mut cmd = Command::new(py);
    cmd.arg(root.join("tests/cluster").join(script)).env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Runs `cmd`, echoing its output as it comes (seen with `--nocapture`) and
/// returning it all; past `timeout` it gets SIGTERM (the driver then tears its
/// brokers and namespaces down), and SIGKILL 30 s later.
fn run_streaming(cmd: &mut Command, timeout: Duration) -> (bool, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let out = Arc::new(Mutex::new(String::new()));
    let pump = |r: Box<dyn Read + Send>| {
        let out = Arc::clone(&out);
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        })
    };
    let readers = [pump(Box::new(child.stdout.take().unwrap())), pump(Box::new(child.stderr.take().unwrap()))];
    let started = Instant::now();
    let mut termed: Option<Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        match termed {
            None if started.elapsed() > timeout => {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                termed = Some(Instant::now());
            }
            Some(t) if t.elapsed() > Duration::from_secs(30) => {
                let _ = child.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for r in readers {
        let _ = r.join();
    }
    let text = out.lock().unwrap().clone();
    if termed.is_some() {
        panic!("{cmd:?} did not finish within {timeout:?}; stopped it. Its output:\n{text}");
    }
    (status.success(), text)
}

/// `faults.py` for the broker under test with these extra arguments.
fn faults(args: &[String], runs: u64) -> Command {
    let mut cmd = python("faults.py");
    match kind() {
        Kind::Fjord => {
            cmd.args(["--broker", "fjord", "--fjord-bin", env!("CARGO_BIN_EXE_fjord")]);
        }
        Kind::Kafka => {
            cmd.args(["--broker", "kafka"]);
        }
    }
    cmd.args(["--runs", &runs.to_string()]);
    if let Ok(seed) = std::env::var("FJORD_FAULT_SEED") {
        cmd.args(["--seed", seed.trim()]);
    }
    if let Ok(budget) = std::env::var("FJORD_FAULT_TIME_BUDGET") {
        cmd.args(["--time-budget", budget.trim()]);
    }
    cmd.args(args);
    cmd.current_dir(repo_root());
    cmd
}

/// The deadline for `runs` runs: Kafka's JVMs restart far slower than fjord.
fn deadline(runs: u64) -> Duration {
    let per_run = if kind() == Kind::Kafka { 150 } else { 60 };
    Duration::from_secs(180 + per_run * runs)
}

fn assert_passed(what: &str, ok: bool, out: &str) {
    let summary = out.lines().rev().find(|l| l.starts_with("SUMMARY ")).unwrap_or("(no SUMMARY line)");
    assert!(ok, "{what} failed: {summary}\n--- output ---\n{out}");
    eprintln!("{what}: {summary}");
}

#[test]
fn checker_self_test() {
    let mut cmd = python("test_checker.py");
    let (ok, out) = run_streaming(&mut cmd, Duration::from_secs(60));
    assert!(ok, "the checker's self-test failed:\n{out}");
    assert!(out.contains("0 failed"), "unexpected self-test output:\n{out}");
}

#[test]
fn faults_loopback() {
    let _one = serial();
    let runs = env_u64("FJORD_FAULT_RUNS", 20);
    if runs == 0 {
        return;
    }
    let mut cmd = faults(&["--net".into(), "loopback".into()], runs);
    let (ok, out) = run_streaming(&mut cmd, deadline(runs));
    assert_passed("fault runs on 127.0.0.1", ok, &out);
}

#[test]
fn faults_netns() {
    let _one = serial();
    let runs = env_u64("FJORD_FAULT_NETNS_RUNS", 6);
    if runs == 0 {
        return;
    }
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    assert!(root, "the netns fault runs create network namespaces and need root (FJORD_FAULT_NETNS_RUNS=0 leaves them out)");
    for tool in ["ip", "tc"] {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(tool).is_file());
        assert!(found, "`{tool}` (iproute2) is not installed: run `bash scripts/install-test-deps.sh`");
    }
    let args: Vec<String> = ["--net", "netns", "--faults", "isolate,partition,netem"].iter().map(|s| s.to_string()).collect();
    let mut cmd = faults(&args, runs);
    let (ok, out) = run_streaming(&mut cmd, deadline(runs));
    assert_passed("fault runs in network namespaces", ok, &out);
}
