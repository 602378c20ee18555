//! The object store side of the tiered storage tests: a real S3 server
//! (moto's, `python -m moto.server` from the venv that
//! `scripts/install-test-deps.sh` makes) on 127.0.0.1, a TCP proxy in front
//! of it that a test stops and starts to make S3 unreachable, and the
//! objects the brokers wrote, listed from S3 or from the local directory
//! backend and parsed by the tiered layout
//! (`fjord-tiered-v1/<topic id>/<partition>/<20-digit base offset>-<upload id>.<ext>`).
//!
//! The outage is the proxy's, never moto's: moto keeps its objects in
//! memory, so killing it would lose every upload. A stopped proxy closes
//! its listener (new connections are refused) and shuts down the
//! connections it was forwarding; started again, it listens on the same
//! port, so the brokers' endpoint setting stays valid.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, repo_root, tail_of};

/// The bucket [`Moto::start`] creates.
pub const BUCKET: &str = "fjord-tiered";

/// The first key segment of every tiered object (after an optional key prefix).
pub const ROOT: &str = "fjord-tiered-v1";

/// A moto S3 server on a free 127.0.0.1 port with [`BUCKET`] created.
/// Killed on drop (and with the test binary: it gets SIGKILL when its
/// parent dies); if the test is failing then, its log's tail is printed.
pub struct Moto {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let python = repo_root().join(".cache/venv/bin/python");
        assert!(python.exists(), "{} not found: run `bash scripts/install-test-deps.sh` (it installs moto)", python.display());
        let dir = tempfile::Builder::new().prefix("fjord-moto-").tempdir().expect("tempdir");
        let log = File::create(dir.path().join("moto.log")).unwrap();
        let port = free_port();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut moto = Moto { child: Some(cmd.spawn().expect("starting moto")), port, dir };
        moto.wait_ready();
        let (status, body) = http(port, "PUT", &format!("/{BUCKET}")).expect("creating the bucket");
        assert_eq!(status, 200, "creating bucket {BUCKET}: {body}");
        moto
    }

    /// Moto's own port (the proxy forwards here; listings go here directly,
    /// so they work during an outage).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.dir.path().join("moto.log"), lines)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(self.port, "GET", "/").is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("moto exited with {status}:\n{}", self.log_tail(40));
            }
            assert!(Instant::now() < deadline, "moto did not answer on port {} within 30 s:\n{}", self.port, self.log_tail(40));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every key in [`BUCKET`] (ListObjectsV2, page by page).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{BUCKET}?list-type=2&max-keys=1000");
            if let Some(t) = &token {
                path.push_str(&format!("&continuation-token={}", percent_encode(t)));
            }
            let (status, body) = http(self.port, "GET", &path).unwrap_or_else(|e| panic!("listing {BUCKET}: {e}"));
            assert_eq!(status, 200, "listing {BUCKET}: {body}");
            keys.extend(xml_values(&body, "Key").into_iter().map(|k| xml_unescape(&k)));
            token = (xml_values(&body, "IsTruncated").first().map(String::as_str) == Some("true"))
                .then(|| xml_values(&body, "NextContinuationToken").into_iter().next())
                .flatten();
            if token.is_none() {
                return keys;
            }
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("----- moto on 127.0.0.1:{}: last lines of its log -----\n{}", self.port, self.log_tail(30));
        }
    }
}

/// One HTTP/1.1 request without a body: the status code and the body.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:.80}")))?;
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok());
    let status = status.ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:.80}")))?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

/// The body of a chunked response.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// The texts of every `<tag>…</tag>` element in `xml`, in order.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

// ---------------------------------------------------------------------------
// The proxy

/// A TCP proxy on 127.0.0.1 in front of one port, with a thread per
/// direction of each connection. [`Proxy::stop`] makes the target
/// unreachable (connection refused, open connections shut down);
/// [`Proxy::resume`] listens again on the same port. Stopped on drop.
pub struct Proxy {
    port: u16,
    target: u16,
    state: Arc<ProxyState>,
    accept: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

#[derive(Default)]
struct ProxyState {
    /// Open connections by number: the client's and the target's socket.
    open: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    /// Connections forwarded so far (the number of the next one).
    accepted: AtomicU64,
}

impl Proxy {
    /// A proxy on a free port forwarding to `127.0.0.1:<target>`.
    pub fn start(target: u16) -> Proxy {
        let mut proxy = Proxy { port: free_port(), target, state: Arc::default(), accept: None };
        proxy.resume();
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for the brokers' endpoint setting.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections forwarded since the proxy started.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::Relaxed)
    }

    pub fn is_running(&self) -> bool {
        self.accept.is_some()
    }

    /// Listens (again) on the proxy's port; a no-op if it is running.
    pub fn resume(&mut self) {
        if self.accept.is_some() {
            return;
        }
        // std sets SO_REUSEADDR, so the connections just shut down (in
        // TIME_WAIT) do not hold the port; a short retry covers the rest.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the proxy cannot listen on 127.0.0.1:{} again: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        listener.set_nonblocking(true).unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let (flag, state, target) = (Arc::clone(&running), Arc::clone(&self.state), self.target);
        let thread = std::thread::spawn(move || accept_loop(&listener, &flag, &state, target));
        self.accept = Some((running, thread));
    }

    /// Closes the listener (new connections are refused) and shuts down
    /// every open connection both ways.
    pub fn stop(&mut self) {
        let Some((running, thread)) = self.accept.take() else { return };
        running.store(false, Ordering::SeqCst);
        // Joined first, so no connection is registered after the sweep below.
        thread.join().expect("the proxy's accept thread");
        for (_, (client, server)) in self.state.open.lock().unwrap().drain() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts until `running` goes false (then the listener is dropped with
/// this thread's return); polls so that it notices.
fn accept_loop(listener: &TcpListener, running: &AtomicBool, state: &Arc<ProxyState>, target: u16) {
    while running.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => forward(client, state, target),
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Connects to the target and copies both ways; a client the target
/// refuses is closed at once.
fn forward(client: TcpStream, state: &Arc<ProxyState>, target: u16) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let n = state.accepted.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
    state.open.lock().unwrap().insert(n, (c2, s2));
    for (from, to) in [(client.try_clone(), server.try_clone()), (server.try_clone(), client.try_clone())] {
        let (Ok(mut from), Ok(mut to)) = (from, to) else { continue };
        let state = Arc::clone(state);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            // One side is done: the connection is over (HTTP clients do not half-close).
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            state.open.lock().unwrap().remove(&n);
        });
    }
}

// ---------------------------------------------------------------------------
// What the brokers wrote

/// Where a broker's tiered objects are: S3 (listed straight from moto) or
/// the local directory backend's root (`<log dir>/remote-log-storage`).
pub enum Store<'a> {
    S3(&'a Moto),
    Dir(PathBuf),
}

impl Store<'_> {
    /// Every object there now, parsed.
    pub fn list(&self) -> Objects {
        let keys = match self {
            Store::S3(moto) => moto.keys(),
            Store::Dir(root) => {
                let mut keys = Vec::new();
                walk(root, root, &mut keys);
                keys
            }
        };
        Objects::from_keys(keys)
    }
}

/// The files under `dir`, as `/`-separated paths relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/"));
        }
    }
}

/// One object of a segment upload, from its key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    pub topic_id: String,
    pub partition: i32,
    pub base_offset: i64,
    /// 22 characters of URL-safe base64.
    pub upload_id: String,
    /// `log`, `index`, `timeindex`, ..., or `manifest`.
    pub ext: String,
}

impl ObjectKey {
    /// `[prefix/]fjord-tiered-v1/<topic id>/<partition>/<base offset:020>-<upload id>.<ext>`,
    /// or `None` for any other key.
    pub fn parse(key: &str) -> Option<ObjectKey> {
        let parts: Vec<&str> = key.split('/').collect();
        let root = parts.iter().rposition(|p| *p == ROOT)?;
        let [topic_id, partition, name] = parts[root + 1..] else { return None };
        let (offset, rest) = name.split_at_checked(20)?;
        let (upload_id, ext) = rest.strip_prefix('-')?.split_at_checked(22)?;
        let ext = ext.strip_prefix('.')?;
        let upload_ok = upload_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !offset.bytes().all(|b| b.is_ascii_digit()) || !upload_ok || ext.is_empty() || ext.contains('.') {
            return None;
        }
        Some(ObjectKey {
            topic_id: topic_id.to_string(),
            partition: partition.parse().ok()?,
            base_offset: offset.parse().ok()?,
            upload_id: upload_id.to_string(),
            ext: ext.to_string(),
        })
    }
}

/// A listing: the keys that name segment objects, and every other key.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub keys: Vec<ObjectKey>,
    pub other: Vec<String>,
}

impl Objects {
    pub fn from_keys(raw: Vec<String>) -> Objects {
        let mut o = Objects::default();
        for k in raw {
            match ObjectKey::parse(&k) {
                Some(key) => o.keys.push(key),
                None => o.other.push(k),
            }
        }
        o.keys.sort();
        o.other.sort();
        o
    }

    /// The objects of one partition of one topic.
    pub fn of<'a>(&'a self, topic_id: &'a str, partition: i32) -> impl Iterator<Item = &'a ObjectKey> + 'a {
        self.keys.iter().filter(move |k| k.topic_id == topic_id && k.partition == partition)
    }

    /// The base offsets of the partition's objects with extension `ext`,
    /// ascending, one per object (a base offset uploaded twice shows twice).
    pub fn base_offsets(&self, topic_id: &str, partition: i32, ext: &str) -> Vec<i64> {
        self.of(topic_id, partition).filter(|k| k.ext == ext).map(|k| k.base_offset).collect()
    }

    /// The partition's complete uploads: base offsets of its `.manifest` objects.
    pub fn manifests(&self, topic_id: &str, partition: i32) -> Vec<i64> {
        self.base_offsets(topic_id, partition, "manifest")
    }

    /// The partition's `.log` objects' base offsets.
    pub fn logs(&self, topic_id: &str, partition: i32) -> Vec<i64> {
        self.base_offsets(topic_id, partition, "log")
    }

    /// Each upload of the partition, (base offset, upload id), with the
    /// extensions of its objects.
    pub fn uploads(&self, topic_id: &str, partition: i32) -> BTreeMap<(i64, String), BTreeSet<String>> {
        let mut m: BTreeMap<(i64, String), BTreeSet<String>> = BTreeMap::new();
        for k in self.of(topic_id, partition) {
            m.entry((k.base_offset, k.upload_id.clone())).or_default().insert(k.ext.clone());
        }
        m
    }

    /// What is wrong with the partition's uploads, if anything: a base
    /// offset with more than one manifest, a manifest without one of `files`
    /// beside it, objects of an upload that has no manifest (`orphans_ok`
    /// false: what a finished deletion or upload leaves none of).
    pub fn problems(&self, topic_id: &str, partition: i32, files: &[&str], orphans_ok: bool) -> Vec<String> {
        let mut out = Vec::new();
        let manifests = self.manifests(topic_id, partition);
        let distinct: BTreeSet<i64> = manifests.iter().copied().collect();
        if distinct.len() != manifests.len() {
            out.push(format!("partition {partition}: more than one manifest for a base offset: {manifests:?}"));
        }
        for ((base, upload), exts) in self.uploads(topic_id, partition) {
            if exts.contains("manifest") {
                let missing: Vec<&&str> = files.iter().filter(|f| !exts.contains(**f)).collect();
                if !missing.is_empty() {
                    out.push(format!("partition {partition}: upload {base:020}-{upload} has a manifest but no {missing:?} ({exts:?})"));
                }
            } else if !orphans_ok {
                out.push(format!("partition {partition}: upload {base:020}-{upload} has objects {exts:?} and no manifest"));
            }
        }
        out
    }
}
