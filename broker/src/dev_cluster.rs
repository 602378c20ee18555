//! `fjord dev-cluster`: "MSK on a laptop". Runs N `fjord start` processes on
//! 127.0.0.1 with consecutive ports, racks and a KRaft voter set, the way a
//! managed cluster would be laid out, and supervises them.
//!
//! Each broker is its own OS process (spawned from `current_exe()`) so that a
//! test or a user can `kill -9` or `SIGSTOP` one broker alone and watch the
//! others cope. A broker that dies is reported once and never restarted: the
//! point is to observe failures, not to hide them.
//!
//! Port layout (defaults): broker i listens for clients on `9092 + i - 1`;
//! the first K brokers are also controllers on `10092 + i - 1`
//! (`--controller-base-port`, default base + 1000).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long every broker has to answer ApiVersions after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a broker has to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often children are checked for exits (and, while starting, probed).
const POLL: Duration = Duration::from_millis(200);
/// One readiness probe's budget (connect, send, first bytes of the answer).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBE_CORRELATION_ID: i32 = 0x0D0C;

/// `fjord dev-cluster` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DevClusterArgs {
    /// Number of broker processes to start.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub brokers: u16,
    /// Rack names, given to the brokers round robin [default: az1,az2,az3, at most N of them].
    #[arg(long, value_name = "RACK,...", value_delimiter = ',', value_parser = parse_rack)]
    pub racks: Vec<String>,
    /// Client (PLAINTEXT) port of broker 1; broker i gets base + i - 1.
    #[arg(long, value_name = "PORT", default_value_t = 9092, value_parser = clap::value_parser!(u16).range(1..))]
    pub base_port: u16,
    /// CONTROLLER port of controller 1; controller i gets this + i - 1 [default: base port + 1000].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub controller_base_port: Option<u16>,
    /// Serve Prometheus /metrics and /ready (metrics.listener) for broker 1 on this port; broker i gets this + i - 1 [default: none].
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub metrics_base_port: Option<u16>,
    /// Folder holding broker-1, broker-2, ... (each broker's log.dirs and broker.log).
    #[arg(long, value_name = "DIR", default_value = "dev-cluster")]
    pub data: PathBuf,
    /// How many of the first brokers are also KRaft controllers [default: min(N, 3)].
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..))]
    pub controllers: Option<u16>,
    /// A setting for every broker, applied after dev-cluster's own (repeatable): --override num.partitions=6
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,
}

/// One `--racks` name: non-empty (a blank `broker.rack` would mean "no rack").
pub fn parse_rack(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("expected comma-separated non-empty rack names".to_string()),
        r => Ok(r.to_string()),
    }
}

/// `--override key=value`, as `fjord start` reads it.
pub fn parse_override(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// The validated layout of the cluster: everything that decides what each
/// broker is told, with no side effects (so it is unit-testable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub brokers: u16,
    pub controllers: u16,
    pub base_port: u16,
    pub controller_base_port: u16,
    pub metrics_base_port: Option<u16>,
    pub racks: Vec<String>,
    /// Absolute, so the paths in messages and `log.dirs` do not depend on who reads them.
    pub data: PathBuf,
    pub overrides: Vec<(String, String)>,
}

impl Plan {
    /// Checks the flags together; the error is one readable sentence.
    pub fn from_args(args: &DevClusterArgs) -> Result<Plan, String> {
        let n = args.brokers;
        if n == 0 {
            return Err("--brokers must be at least 1".into());
        }
        let k = args.controllers.unwrap_or(n.min(3));
        if k == 0 || k > n {
            return Err(format!("--controllers must be between 1 and --brokers ({n}), got {k}"));
        }
        let base = args.base_port;
        if base == 0 {
            return Err("--base-port must be at least 1".into());
        }
        let cbase = match args.controller_base_port {
            Some(p) if p > 0 => p,
            Some(_) => return Err("--controller-base-port must be at least 1".into()),
            None => base.checked_add(1000).ok_or(format!("--base-port {base} + 1000 is over 65535; give --controller-base-port"))?,
        };
        let last = base.checked_add(n - 1).ok_or(format!("{n} brokers from --base-port {base} go past port 65535"))?;
        let clast = cbase.checked_add(k - 1).ok_or(format!("{k} controllers from --controller-base-port {cbase} go past port 65535"))?;
        if base <= clast && cbase <= last {
            return Err(format!("broker ports {base}-{last} overlap controller ports {cbase}-{clast}; move --controller-base-port"));
        }
        if let Some(m) = args.metrics_base_port {
            let mlast = m.checked_add(n - 1).ok_or(format!("{n} metrics ports from --metrics-base-port {m} go past port 65535"))?;
            if (m <= last && base <= mlast) || (m <= clast && cbase <= mlast) {
                return Err(format!("metrics ports {m}-{mlast} overlap the broker or controller ports; move --metrics-base-port"));
            }
        }
        let racks = match &args.racks {
            r if r.is_empty() => (1..=n.min(3)).map(|i| format!("az{i}")).collect(),
            r => r.clone(),
        };
        if racks.iter().any(|r| r.trim().is_empty()) {
            return Err("--racks needs comma-separated non-empty rack names".into());
        }
        // log.dirs is a comma-separated list, and the path goes through a
        // `key=value` string: a comma or a non-UTF-8 byte would change it.
        let data_text = args.data.to_str().ok_or(format!("--data {} is not valid UTF-8", args.data.display()))?;
        if data_text.is_empty() || data_text.contains(',') {
            return Err(format!("--data must be a non-empty path without commas, got {data_text:?}"));
        }
        let data = std::path::absolute(&args.data).map_err(|e| format!("--data {data_text}: {e}"))?;
        Ok(Plan {
            brokers: n,
            controllers: k,
            base_port: base,
            controller_base_port: cbase,
            metrics_base_port: args.metrics_base_port,
            racks,
            data,
            overrides: args.overrides.clone(),
        })
    }

    /// Client (PLAINTEXT) port of broker `id` (1-based).
    pub fn port(&self, id: u16) -> u16 {
        self.base_port + id - 1
    }

    /// CONTROLLER port of broker `id`, if it is a controller.
    pub fn controller_port(&self, id: u16) -> Option<u16> {
        (id <= self.controllers).then(|| self.controller_base_port + id - 1)
    }

    /// Where broker `id` serves /metrics, if `--metrics-base-port` was given.
    pub fn metrics_port(&self, id: u16) -> Option<u16> {
        self.metrics_base_port.map(|m| m + id - 1)
    }

    pub fn rack(&self, id: u16) -> &str {
        &self.racks[usize::from(id - 1) % self.racks.len()]
    }

    pub fn broker_dir(&self, id: u16) -> PathBuf {
        self.data.join(format!("broker-{id}"))
    }

    /// `1@127.0.0.1:c1,2@127.0.0.1:c2,...`: the same for every broker.
    pub fn quorum_voters(&self) -> String {
        (1..=self.controllers).map(|c| format!("{c}@127.0.0.1:{}", self.controller_base_port + c - 1)).collect::<Vec<_>>().join(",")
    }

    pub fn bootstrap_servers(&self) -> String {
        (1..=self.brokers).map(|i| format!("127.0.0.1:{}", self.port(i))).collect::<Vec<_>>().join(",")
    }

    /// Every `--override` broker `id` is started with, in order; the user's
    /// own overrides come last so they win.
    pub fn settings(&self, id: u16) -> Vec<(String, String)> {
        let (roles, listeners) = match self.controller_port(id) {
            Some(c) => ("broker,controller", format!("PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{c}", self.port(id))),
            None => ("broker", format!("PLAINTEXT://127.0.0.1:{}", self.port(id))),
        };
        let mut s: Vec<(String, String)> = [
            ("node.id", id.to_string()),
            ("process.roles", roles.to_string()),
            ("listeners", listeners),
            ("controller.listener.names", "CONTROLLER".to_string()),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string()),
            ("controller.quorum.voters", self.quorum_voters()),
            ("log.dirs", self.broker_dir(id).display().to_string()),
            ("broker.rack", self.rack(id).to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(m) = self.metrics_port(id) {
            s.push(("metrics.listener".to_string(), format!("127.0.0.1:{m}")));
        }
        s.extend(self.overrides.iter().cloned());
        s
    }

    /// Every port the cluster will bind, with what it is for (for the error).
    fn ports(&self) -> Vec<(u16, String, &'static str)> {
        let mut ports: Vec<_> = (1..=self.brokers).map(|i| (self.port(i), format!("broker {i}'s client port"), "--base-port")).collect();
        ports.extend(
            (1..=self.controllers)
                .filter_map(|i| self.controller_port(i).map(|p| (p, format!("broker {i}'s controller port"), "--controller-base-port"))),
        );
        ports.extend(
            (1..=self.brokers)
                .filter_map(|i| self.metrics_port(i).map(|p| (p, format!("broker {i}'s metrics port"), "--metrics-base-port"))),
        );
        ports
    }
}

/// Runs the cluster until SIGINT/SIGTERM/SIGHUP (exit 0) or until every broker
/// has died (exit 1). Flag errors exit 2, as clap's do.
pub fn run(args: DevClusterArgs) -> ExitCode {
    let plan = match Plan::from_args(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Checked up front so a busy port is one clear line instead of a broker
    // dying mid-start among N interleaved logs.
    for (port, what, flag) in plan.ports() {
        if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            eprintln!("dev-cluster: port {port} ({what}) on 127.0.0.1 is not free: {e}; stop what uses it or choose another {flag}");
            return ExitCode::FAILURE;
        }
    }
    for i in 1..=plan.brokers {
        if let Err(e) = fs::create_dir_all(plan.broker_dir(i)) {
            eprintln!("dev-cluster: cannot create {}: {e}", plan.broker_dir(i).display());
            return ExitCode::FAILURE;
        }
    }
    // One thread is enough: the loop only polls children and probes ports.
    // It also keeps every spawn on the main thread.
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(supervise(&plan)),
        Err(e) => {
            eprintln!("dev-cluster: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn supervise(plan: &Plan) -> ExitCode {
    // Installed before any spawn, so an early Ctrl-C still stops what has started.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dev-cluster: cannot watch for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("dev-cluster: cannot find the fjord executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "dev-cluster: starting {} on 127.0.0.1 port {} (controller {}), data in {}",
        count(plan.brokers, "broker"),
        port_range(plan.base_port, plan.brokers),
        port_range(plan.controller_base_port, plan.controllers),
        plan.data.display()
    );
    let mut brokers: Vec<Proc> = Vec::new();
    for id in 1..=plan.brokers {
        match Proc::spawn(plan, &exe, id) {
            Ok(p) => brokers.push(p),
            Err(e) => {
                eprintln!("dev-cluster: cannot start broker {id}: {e}");
                stop_all(&mut brokers, &mut signals).await;
                return ExitCode::FAILURE;
            }
        }
    }
    match wait_ready(plan, &mut brokers, &mut signals).await {
        Ok(None) => {}
        Ok(Some(sig)) => {
            eprintln!("dev-cluster: {sig} while starting; stopping the brokers");
            stop_all(&mut brokers, &mut signals).await;
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dev-cluster: {e}; stopping the others");
            stop_all(&mut brokers, &mut signals).await;
            return ExitCode::FAILURE;
        }
    }
    // The one line on stdout, for scripts: `eval`-free `cut -d= -f2`.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "bootstrap.servers={}", plan.bootstrap_servers()).and_then(|_| out.flush());
    drop(out);
    eprintln!("dev-cluster: {} ready (controller.quorum.voters={})", count(plan.brokers, "broker"), plan.quorum_voters());
    for b in &brokers {
        let controller = plan.controller_port(b.id).map(|c| format!(", controller port {c}")).unwrap_or_default();
        let controller = match plan.metrics_port(b.id) {
            Some(m) => format!("{controller}, metrics http://127.0.0.1:{m}/metrics"),
            None => controller,
        };
        eprintln!(
            "dev-cluster:   broker {}: port {}{controller}, rack {}, pid {}, data {}",
            b.id,
            plan.port(b.id),
            plan.rack(b.id),
            b.pid,
            plan.broker_dir(b.id).display()
        );
    }
    eprintln!("dev-cluster: each broker's output is in its data folder's broker.log; Ctrl-C stops the cluster");

    loop {
        tokio::select! {
            sig = signals.recv() => {
                eprintln!("dev-cluster: {sig}: stopping the brokers");
                stop_all(&mut brokers, &mut signals).await;
                return ExitCode::SUCCESS;
            }
            _ = tokio::time::sleep(POLL) => {}
        }
        for b in &mut brokers {
            if b.newly_exited() {
                eprintln!("dev-cluster: broker {} (pid {}) {}; not restarting", b.id, b.pid, b.exit_text());
            }
        }
        if brokers.iter().all(|b| b.exit.is_some()) {
            eprintln!("dev-cluster: every broker has exited");
            stop_all(&mut brokers, &mut signals).await;
            return ExitCode::FAILURE;
        }
    }
}

/// "1 broker", "3 brokers".
fn count(n: u16, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// "9092", "9092-9094".
fn port_range(first: u16, n: u16) -> String {
    if n == 1 { first.to_string() } else { format!("{first}-{}", first + n - 1) }
}

/// Until every broker answers ApiVersions: `Ok(None)`; `Ok(Some(signal))` if
/// asked to stop first; `Err` if a broker exits or the deadline passes.
async fn wait_ready(plan: &Plan, brokers: &mut [Proc], signals: &mut Signals) -> Result<Option<&'static str>, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut ready = vec![false; brokers.len()];
    loop {
        for b in brokers.iter_mut() {
            if b.newly_exited() {
                let log = plan.broker_dir(b.id).join("broker.log");
                return Err(format!("broker {} (pid {}) {} while starting (see {})", b.id, b.pid, b.exit_text(), log.display()));
            }
        }
        if ready.iter().all(|r| *r) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let slow: Vec<String> = brokers.iter().zip(&ready).filter(|(_, r)| !**r).map(|(b, _)| b.id.to_string()).collect();
            return Err(format!("broker(s) {} did not answer ApiVersions within {} s", slow.join(","), READY_TIMEOUT.as_secs()));
        }
        let waiting: Vec<usize> = (0..brokers.len()).filter(|i| !ready[*i]).collect();
        let probes = futures_util::future::join_all(waiting.iter().map(|i| answers_api_versions(plan.port(brokers[*i].id))));
        tokio::select! {
            sig = signals.recv() => return Ok(Some(sig)),
            answered = async { tokio::time::sleep(POLL).await; probes.await } => {
                for (i, ok) in waiting.into_iter().zip(answered) {
                    ready[i] = ok;
                }
            }
        }
    }
}

/// SIGTERM to every live broker, up to [`STOP_TIMEOUT`] for them to exit
/// (a second signal cuts it short), SIGKILL for the rest; one line each.
async fn stop_all(brokers: &mut [Proc], signals: &mut Signals) {
    let mut already = Vec::new();
    for b in brokers.iter_mut() {
        // Polled right before the signal: a child we have not reaped keeps
        // its pid, so the SIGTERM cannot reach a recycled one.
        b.newly_exited();
        already.push(b.exit.is_some());
        if b.exit.is_none()
            && let Err(e) = terminate(b.pid)
        {
            eprintln!("dev-cluster: cannot send SIGTERM to broker {} (pid {}): {e}", b.id, b.pid);
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while brokers.iter().any(|b| b.exit.is_none()) && Instant::now() < deadline {
        tokio::select! {
            sig = signals.recv() => {
                eprintln!("dev-cluster: {sig} again: killing the brokers now");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        for b in brokers.iter_mut() {
            b.newly_exited();
        }
    }
    for (b, was_dead) in brokers.iter_mut().zip(already) {
        let line = if was_dead {
            format!("had already {}", b.exit_text())
        } else if b.exit.is_none() {
            let _ = b.child.kill();
            let _ = b.child.wait();
            b.exit = Some((false, "was killed (SIGKILL)".into()));
            "was still running; killed it (SIGKILL)".to_string()
        } else if b.exit.as_ref().is_some_and(|(clean, _)| *clean) {
            "stopped cleanly".to_string()
        } else {
            b.exit_text().to_string()
        };
        eprintln!("dev-cluster: broker {} (pid {}) {line}", b.id, b.pid);
    }
    // Let the pipe readers write the brokers' last lines; they end at EOF,
    // which comes when the broker has exited. Bounded in case one does not.
    let until = Instant::now() + Duration::from_secs(2);
    for b in brokers.iter_mut() {
        for h in std::mem::take(&mut b.pipes) {
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

/// One broker process.
struct Proc {
    id: u16,
    pid: u32,
    child: Child,
    /// `(clean, "exited with ...")`, set when the exit is first seen so it is reported once.
    exit: Option<(bool, String)>,
    pipes: Vec<JoinHandle<()>>,
}

impl Proc {
    fn spawn(plan: &Plan, exe: &Path, id: u16) -> Result<Proc, String> {
        let log_path = plan.broker_dir(id).join("broker.log");
        let mut log = OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        // The log is appended to across runs; mark where this one starts.
        let _ = writeln!(log, "===== dev-cluster: starting broker {id} on 127.0.0.1:{} =====", plan.port(id));
        let mut cmd = Command::new(exe);
        cmd.arg("start");
        for (k, v) in plan.settings(id) {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        // Own process group: a terminal's Ctrl-C reaches dev-cluster only, which
        // then stops the brokers itself and can tell a crash from a shutdown.
        // NO_COLOR: the output goes to log files, where escape codes are noise.
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).env("NO_COLOR", "1").process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", exe.display()))?;
        let log = Arc::new(Mutex::new(log));
        let mut pipes = Vec::new();
        let streams: [Option<Box<dyn Read + Send>>; 2] =
            [child.stdout.take().map(|s| Box::new(s) as _), child.stderr.take().map(|s| Box::new(s) as _)];
        for stream in streams.into_iter().flatten() {
            match echo(id, stream, Arc::clone(&log)) {
                Ok(h) => pipes.push(h),
                Err(e) => eprintln!("dev-cluster: cannot read broker {id}'s output: {e}"),
            }
        }
        Ok(Proc { id, pid: child.id(), child, exit: None, pipes })
    }

    /// Whether the broker has exited since the last call (never true twice).
    fn newly_exited(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        self.exit = match self.child.try_wait() {
            Ok(None) => return false,
            Ok(Some(status)) => Some(describe_exit(status)),
            Err(e) => Some((false, format!("could not be waited for ({e})"))),
        };
        true
    }

    fn exit_text(&self) -> &str {
        self.exit.as_ref().map_or("is running", |(_, text)| text)
    }
}

/// Copies a broker's output, line by line, to its broker.log and, prefixed
/// with `[broker i] `, to our stderr. A thread per pipe: blocking reads are
/// the simplest thing that cannot starve the supervising loop.
fn echo(id: u16, stream: Box<dyn Read + Send>, log: Arc<Mutex<File>>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(format!("broker-{id}-output")).spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let _ = log.lock().unwrap_or_else(|p| p.into_inner()).write_all(&line);
            let _ = write!(std::io::stderr().lock(), "[broker {id}] {}", String::from_utf8_lossy(&line));
        }
    })
}

/// `(clean, text)`: clean is exit code 0; text is "exited with code 1" or
/// "exited with signal 9 (SIGKILL)".
fn describe_exit(status: ExitStatus) -> (bool, String) {
    if let Some(code) = status.code() {
        return (code == 0, format!("exited with code {code}"));
    }
    match status.signal() {
        Some(sig) => match signal_name(sig) {
            Some(name) => (false, format!("exited with signal {sig} ({name})")),
            None => (false, format!("exited with signal {sig}")),
        },
        None => (false, format!("exited ({status})")),
    }
}

/// A signal's name for the exit reports, for the usual suspects.
fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// SIGTERM to `pid`, then SIGCONT: a broker someone SIGSTOPped would
/// otherwise sit on the SIGTERM until the SIGKILL deadline.
fn terminate(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above. A failure here changes nothing for a running broker.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP all mean "stop the cluster". SIGHUP matters
/// because the brokers sit in their own process group: when the terminal
/// goes away only we hear about it.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())?, hup: signal(SignalKind::hangup())? })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// A Kafka ApiVersions v0 request: size, api_key 18, api_version 0,
/// correlation id, client id (i16 length + bytes). v0 because every
/// broker version answers it and it has no flexible-version tagged fields.
fn api_versions_v0(correlation_id: i32, client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id_len = i16::try_from(id.len()).unwrap_or(0);
    let id = &id[..id_len as usize];
    let mut body = Vec::with_capacity(10 + id.len());
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(id);
    let mut req = (body.len() as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    req
}

/// Whether 127.0.0.1:`port` answers ApiVersions (a size and our correlation id come back).
async fn answers_api_versions(port: u16) -> bool {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(&api_versions_v0(PROBE_CORRELATION_ID, "fjord-dev-cluster")).await?;
        let mut head = [0u8; 8];
        s.read_exact(&mut head).await?;
        Ok::<bool, std::io::Error>(head[4..8] == PROBE_CORRELATION_ID.to_be_bytes())
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(true)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DevClusterArgs,
    }

    fn args(flags: &[&str]) -> Result<DevClusterArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("dev-cluster").chain(flags.iter().copied())).map(|c| c.args)
    }

    fn plan(flags: &[&str]) -> Result<Plan, String> {
        Plan::from_args(&args(flags).map_err(|e| e.to_string())?)
    }

    fn get<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
        settings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    #[test]
    fn flag_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert_eq!(args(&["--brokers", "2", "--racks", "a, b", "--racks", "c"]).unwrap().racks, ["a", "b", "c"]);
    }

    #[test]
    fn controller_broker_settings() {
        let p = plan(&["--brokers", "4", "--data", "/tmp/dc"]).unwrap();
        let s = p.settings(2);
        let want: Vec<(String, String)> = [
            ("node.id", "2"),
            ("process.roles", "broker,controller"),
            ("listeners", "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:10093"),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.quorum.voters", "1@127.0.0.1:10092,2@127.0.0.1:10093,3@127.0.0.1:10094"),
            ("log.dirs", "/tmp/dc/broker-2"),
            ("broker.rack", "az2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(s, want);
    }

    #[test]
    fn broker_only_settings_and_rack_round_robin() {
        let p = plan(&["--brokers", "5", "--base-port", "20000", "--controller-base-port", "30000", "--data", "/d"]).unwrap();
        let s = p.settings(4);
        assert_eq!(get(&s, "process.roles"), ["broker"]);
        assert_eq!(get(&s, "listeners"), ["PLAINTEXT://127.0.0.1:20003"]);
        assert_eq!(get(&s, "controller.quorum.voters"), ["1@127.0.0.1:30000,2@127.0.0.1:30001,3@127.0.0.1:30002"]);
        let racks: Vec<&str> = (1..=5).map(|i| p.rack(i)).collect();
        assert_eq!(racks, ["az1", "az2", "az3", "az1", "az2"]);
        assert_eq!(p.bootstrap_servers(), "127.0.0.1:20000,127.0.0.1:20001,127.0.0.1:20002,127.0.0.1:20003,127.0.0.1:20004");
        assert_eq!(p.controller_port(4), None);

        let p = plan(&["--brokers", "3", "--racks", "east, west"]).unwrap();
        assert_eq!((1..=3).map(|i| p.rack(i)).collect::<Vec<_>>(), ["east", "west", "east"]);
        // Fewer brokers than default racks: only as many racks as brokers.
        let p = plan(&["--brokers", "2"]).unwrap();
        assert_eq!(p.racks, ["az1", "az2"]);
        assert_eq!(p.controllers, 2);
        let p = plan(&["--brokers", "1"]).unwrap();
        assert_eq!(get(&p.settings(1), "controller.quorum.voters"), ["1@127.0.0.1:10092"]);
    }

    #[test]
    fn metrics_ports_follow_the_base_port() {
        let p = plan(&["--brokers", "3", "--metrics-base-port", "11001"]).unwrap();
        assert_eq!(get(&p.settings(1), "metrics.listener"), ["127.0.0.1:11001"]);
        assert_eq!(get(&p.settings(3), "metrics.listener"), ["127.0.0.1:11003"]);
        assert!(p.ports().iter().any(|(port, what, _)| *port == 11003 && what.contains("metrics")));
        assert!(get(&plan(&["--brokers", "3"]).unwrap().settings(1), "metrics.listener").is_empty());
        let overlap = plan(&["--brokers", "3", "--metrics-base-port", "9093"]).unwrap_err();
        assert!(overlap.contains("--metrics-base-port"), "{overlap}");
        assert!(plan(&["--brokers", "3", "--metrics-base-port", "10093"]).is_err(), "controller ports");
        assert!(plan(&["--brokers", "3", "--metrics-base-port", "65534"]).is_err());
    }

    #[test]
    fn overrides_come_last_and_data_is_absolute() {
        let p = plan(&["--brokers", "3", "--controllers", "1", "--override", "num.partitions=6", "--override", "broker.rack=x"]).unwrap();
        let s = p.settings(3);
        assert_eq!(s[s.len() - 2..], [("num.partitions".into(), "6".into()), ("broker.rack".into(), "x".into())]);
        assert_eq!(get(&s, "broker.rack"), ["az3", "x"], "ours first, the user's after");
        assert_eq!(get(&p.settings(2), "process.roles"), ["broker"]);
        assert!(p.data.is_absolute() && p.data.ends_with("dev-cluster"), "{:?}", p.data);
    }

    #[test]
    fn bad_flags_are_errors() {
        for flags in [
            &["--brokers", "0"][..],
            &["--brokers", "-1"],
            &["--brokers", "x"],
            &["--brokers", "2", "--racks", ""],
            &["--brokers", "2", "--racks", "a,,b"],
            &["--brokers", "2", "--racks", " ,a"],
            &["--brokers", "2", "--controllers", "0"],
            &["--brokers", "2", "--base-port", "0"],
            &["--brokers", "2", "--base-port", "70000"],
            &["--brokers", "2", "--override", "novalue"],
            &[],
        ] {
            assert!(args(flags).is_err(), "{flags:?}");
        }
        for (flags, needle) in [
            (&["--brokers", "3", "--controllers", "4"][..], "--controllers"),
            (&["--brokers", "3", "--base-port", "65534", "--controller-base-port", "1000"], "65535"),
            (&["--brokers", "2", "--base-port", "65000"], "--controller-base-port"),
            (&["--brokers", "3", "--controller-base-port", "65534"], "65535"),
            (&["--brokers", "3", "--base-port", "9092", "--controller-base-port", "9094"], "overlap"),
            (&["--brokers", "3", "--data", ""], "--data"),
            (&["--brokers", "3", "--data", "/a,b"], "--data"),
        ] {
            let err = plan(flags).expect_err(&format!("{flags:?}"));
            assert!(err.contains(needle), "{flags:?}: {err}");
        }
    }

    #[test]
    fn api_versions_request_bytes() {
        // size 11, api_key 18, version 0, correlation id 7, client id "t"
        assert_eq!(api_versions_v0(7, "t"), [0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b't']);
    }

    #[test]
    fn exit_descriptions() {
        assert_eq!(describe_exit(ExitStatus::from_raw(0)), (true, "exited with code 0".to_string()));
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), (false, "exited with code 1".to_string()));
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), (false, "exited with signal 9 (SIGKILL)".to_string()));
    }
}
