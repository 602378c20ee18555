"""A cluster of N broker processes (fjord or Apache Kafka in KRaft mode) that a
fault test can start, kill, pause, restart, cut off and slow down.

Every broker is its own OS process, started with the same Kafka config keys
(see `Cluster.node_config`). Two network modes:

- `loopback`: every broker on 127.0.0.1 with its own ports (free ports found
  by binding port 0). Process faults only (kill, stop, restart).
- `netns`: every broker in a network namespace of its own (`fjt-<run>-b<i>`),
  joined by a veth pair to a bridge in the root namespace (`fjtbr<run>`,
  10.X.Y.1/24, broker i at 10.X.Y.(10+i)); the test's clients in the root
  namespace reach every broker, the brokers reach each other through the
  bridge, and a broker can be cut off (`isolate`), cut off from its peers only
  (`partition`), or slowed down and made lossy (`netem`). Needs root and
  iproute2. The kernel's netem qdisc is used when it has one; otherwise the
  delay becomes a token-bucket rate limit (`tc ... tbf`) and the loss a random
  drop in nftables (`nft`, when installed).

Only 127.0.0.1 and the namespaces, links and bridge that this module creates
are ever touched. All of it (processes, namespaces, links, data folders unless
kept) goes away in `close()`, which also runs at exit and on SIGTERM/SIGINT.
A run killed with SIGKILL leaves its brokers to die of PR_SET_PDEATHSIG and
its namespaces to the next run's `cleanup_stale_netns()`, which removes those
whose creating process is gone.

Usable as a library (`faults.py`, `checker.py`) or by hand:
    python3 tests/cluster/cluster.py --broker kafka --net netns --hold 60
"""

import argparse
import atexit
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KAFKA_TOOL = os.path.join(REPO, "tests", "interop", "kafka-tool.sh")
NETNS_STATE = "/tmp/fjt-netns"  # one JSON file per live netns run: its pid and what it created

# Short raft timings for fjord so failover takes about a second.
FJORD_RAFT = {
    "raft.heartbeat.interval.ms": "100",
    "raft.election.timeout.ms": "600",
    "raft.election.timeout.max.ms": "1200",
    "raft.transport.linger.ms": "5",
    "raft.reconnect.backoff.max.ms": "200",
}
# Kafka: notice a dead or paused broker after 4 s instead of 9 s, so a run's
# failover (and so the whole test) is quicker. Defaults otherwise.
KAFKA_TUNING = {
    "broker.heartbeat.interval.ms": "1000",
    "broker.session.timeout.ms": "4000",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_answered(host, port, timeout=1.0):
    """Sends ApiVersions v0 and reports whether the broker answered it."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(2.0)
            # size, api_key 18, api_version 0, correlation_id 7, client_id "t"
            s.sendall(struct.pack(">ihhih", 11, 18, 0, 7, 1) + b"t")
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                if not chunk:
                    return False
                head += chunk
            return struct.unpack(">ii", head)[1] == 7
    except OSError:
        return False


def sh(*args, check=True, quiet=False):
    """Runs a command (iproute2, tc, nft); fails with its output unless it exits 0."""
    r = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    if not check and r.returncode != 0 and not quiet:
        log(f"(ignored) `{' '.join(args)}`: {r.stderr.strip()}")
    return r


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours, should a broker log them
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# --- network namespaces --------------------------------------------------------


def require_iproute2():
    missing = [t for t in ("ip", "tc") if shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"netns mode needs iproute2 ({' and '.join(missing)} not found): run `bash scripts/install-test-deps.sh` "
            "(it installs iproute2) or use --net loopback"
        )
    if os.geteuid() != 0:
        raise SystemExit("netns mode creates network namespaces and links: run it as root, or use --net loopback")


def cleanup_stale_netns():
    """Removes namespaces, links and bridges of earlier netns runs whose process is gone."""
    if not os.path.isdir(NETNS_STATE):
        return
    for name in os.listdir(NETNS_STATE):
        path = os.path.join(NETNS_STATE, name)
        try:
            with open(path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if pid_alive(st.get("pid", 0)):
            continue
        log(f"removing leftovers of netns run {st.get('run')} (pid {st.get('pid')} is gone)")
        Net.remove_all(st.get("namespaces", []), st.get("links", []))
        try:
            os.unlink(path)
        except OSError:
            pass


class Net:
    """The netns topology of one run: a bridge and one namespace per broker."""

    def __init__(self, run, n):
        require_iproute2()
        cleanup_stale_netns()
        self.run, self.n = run, n
        self.bridge = f"fjtbr{run}"
        self.namespaces = [f"fjt-{run}-b{i}" for i in range(1, n + 1)]
        self.host_links = [f"fjt{run}v{i}" for i in range(1, n + 1)]  # root-namespace ends
        self.ns_links = [f"fjt{run}p{i}" for i in range(1, n + 1)]  # ends inside the namespaces
        self.subnet = self._pick_subnet()
        self.netem_kind = None  # "netem" or "tbf" once probed
        self.partitioned = set()
        self.degraded = set()
        self.state_path = os.path.join(NETNS_STATE, f"{run}.json")

    def _pick_subnet(self):
        used = sh("ip", "-4", "-o", "addr").stdout + sh("ip", "-4", "route").stdout
        rnd = random.Random()
        for _ in range(200):
            a, b = rnd.randint(200, 254), rnd.randint(0, 254)
            if f"10.{a}.{b}." not in used:
                return f"10.{a}.{b}"
        raise RuntimeError("no free 10.x.y.0/24 subnet for the test bridge")

    def ip(self, i):
        return f"{self.subnet}.{10 + i}"

    def ns(self, i):
        return self.namespaces[i - 1]

    def _save_state(self):
        os.makedirs(NETNS_STATE, exist_ok=True)
        with open(self.state_path, "w") as f:
            json.dump({"run": self.run, "pid": os.getpid(), "namespaces": self.namespaces,
                       "links": [self.bridge] + self.host_links}, f)

    def setup(self):
        self._save_state()  # first, so that a crash half-way is cleaned up later
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            ns, host, inner = self.ns(i), self.host_links[i - 1], self.ns_links[i - 1]
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", inner, "netns", ns)
            sh("ip", "link", "set", host, "master", self.bridge)
            sh("ip", "link", "set", host, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", inner)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        self._probe_netem()
        log(f"netns: bridge {self.bridge} {self.subnet}.1/24, brokers at "
            + ", ".join(f"{self.ns(i)}={self.ip(i)}" for i in range(1, self.n + 1))
            + f"; delay/loss via {self.netem_kind}")

    def _probe_netem(self):
        dev = self.host_links[0]
        r = sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "1ms", check=False, quiet=True)
        if r.returncode == 0:
            sh("tc", "qdisc", "del", "dev", dev, "root", check=False, quiet=True)
            self.netem_kind = "netem"
        else:
            self.netem_kind = "tbf+nft" if shutil.which("nft") else "tbf"

    def isolate(self, i):
        """Cuts broker i off from everyone (peers and clients): its bridge port goes down."""
        sh("ip", "link", "set", self.host_links[i - 1], "down")

    def heal(self, i):
        sh("ip", "link", "set", self.host_links[i - 1], "up", check=False)
        self.clear_netem(i)
        self.unpartition(i)

    def partition(self, i):
        """Cuts broker i off from the other brokers only; the clients (root namespace) still reach it."""
        for j in range(1, self.n + 1):
            if j != i:
                sh("ip", "netns", "exec", self.ns(i), "ip", "route", "add", "blackhole", f"{self.ip(j)}/32", check=False)
                sh("ip", "netns", "exec", self.ns(j), "ip", "route", "add", "blackhole", f"{self.ip(i)}/32", check=False)
        self.partitioned.add(i)

    def unpartition(self, i):
        if i not in self.partitioned:
            return
        for j in range(1, self.n + 1):
            if j != i:
                sh("ip", "netns", "exec", self.ns(i), "ip", "route", "del", "blackhole", f"{self.ip(j)}/32", check=False, quiet=True)
                sh("ip", "netns", "exec", self.ns(j), "ip", "route", "del", "blackhole", f"{self.ip(i)}/32", check=False, quiet=True)
        self.partitioned.discard(i)

    def netem(self, i, delay_ms=200, jitter_ms=50, loss_pct=20, spec=None):
        """Delays and drops broker i's packets both ways. `spec` (netem's
        words, like "delay 200ms 50ms loss 20%") replaces the numbers. Returns
        what was applied."""
        host, inner, ns = self.host_links[i - 1], self.ns_links[i - 1], self.ns(i)
        if spec:
            words = spec.split()
            for k, w in enumerate(words[:-1]):
                if w == "delay":
                    delay_ms = int(float(words[k + 1].rstrip("ms")))
                elif w == "loss":
                    loss_pct = int(float(words[k + 1].rstrip("%")))
        self.degraded.add(i)
        if self.netem_kind == "netem":
            spec = ["netem"] + (spec.split() if spec else
                                ["delay", f"{delay_ms}ms", f"{jitter_ms}ms", "loss", f"{loss_pct}%"])
            sh("tc", "qdisc", "replace", "dev", host, "root", *spec)
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", inner, "root", *spec)
            return "netem " + " ".join(spec[1:])
        # No netem in this kernel: a slow link (rate limit with a queue of up to
        # delay_ms) both ways, and random loss in nftables.
        rate = "512kbit"
        spec = ["tbf", "rate", rate, "burst", "16kb", "latency", f"{delay_ms}ms"]
        sh("tc", "qdisc", "replace", "dev", host, "root", *spec)
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", inner, "root", *spec)
        what = f"tbf rate {rate} queue {delay_ms}ms (no netem in this kernel)"
        if self.netem_kind == "tbf+nft" and loss_pct > 0:
            rules = (
                "table inet fjtloss {\n"
                f"  chain in {{ type filter hook input priority 0; policy accept; iifname \"{inner}\" numgen random mod 100 < {loss_pct} drop; }}\n"
                f"  chain out {{ type filter hook output priority 0; policy accept; oifname \"{inner}\" numgen random mod 100 < {loss_pct} drop; }}\n"
                "}\n"
            )
            r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"nft failed: {r.stderr.strip()}")
            what += f", nft random loss {loss_pct}%"
        else:
            what += ", no loss (nft is not installed)"
        return what

    def clear_netem(self, i):
        if i not in self.degraded:
            return
        host, inner, ns = self.host_links[i - 1], self.ns_links[i - 1], self.ns(i)
        sh("tc", "qdisc", "del", "dev", host, "root", check=False, quiet=True)
        sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", inner, "root", check=False, quiet=True)
        if self.netem_kind == "tbf+nft":
            sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "fjtloss", check=False, quiet=True)
        self.degraded.discard(i)

    @staticmethod
    def remove_all(namespaces, links):
        for ns in namespaces:
            r = sh("ip", "netns", "pids", ns, check=False, quiet=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False, quiet=True)
        for link in links:  # deleting a namespace deletes its veth pairs; the bridge stays
            sh("ip", "link", "del", link, check=False, quiet=True)

    def teardown(self):
        Net.remove_all(self.namespaces, [self.bridge] + self.host_links)
        try:
            os.unlink(self.state_path)
        except OSError:
            pass


# --- brokers -------------------------------------------------------------------


class Node:
    def __init__(self, i, host, port, cport, folder):
        self.i, self.host, self.port, self.cport, self.folder = i, host, port, cport, folder
        self.data = os.path.join(folder, "data")
        self.log_path = os.path.join(folder, "broker.log")
        self.props = os.path.join(folder, "server.properties")
        self.proc = None
        self.stopped = False  # SIGSTOPped

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def running(self):
        return self.proc is not None and self.proc.poll() is None


_live_clusters = []


def _close_all():
    for c in list(_live_clusters):
        c.close()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


atexit.register(_close_all)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except ValueError:  # not the main thread
        pass


class Cluster:
    def __init__(self, broker="fjord", n=3, net="loopback", fjord_bin=None, keep=False, kafka_heap="512m",
                 extra=None, name=None):
        if broker not in ("fjord", "kafka"):
            raise ValueError(f"broker must be fjord or kafka, not {broker!r}")
        if broker == "fjord":
            # Absolute: each broker runs in its own folder.
            fjord_bin = os.path.abspath(fjord_bin or os.path.join(REPO, "target", "release", "fjord"))
            if not os.access(fjord_bin, os.X_OK):
                raise SystemExit(f"no fjord binary at {fjord_bin}: build it (cargo build --release -p fjord-broker) or pass --fjord-bin")
        else:
            libs = os.environ.get("FJORD_KAFKA_LIBS", os.path.join(REPO, ".cache", "kafka-libs"))
            if not os.path.isfile(os.path.join(libs, ".version")) or shutil.which("java") is None:
                raise SystemExit("Kafka's jars or java are missing: run `bash scripts/fetch-kafka.sh && bash scripts/install-test-deps.sh`")
        self.broker, self.n, self.net_mode, self.fjord_bin = broker, n, net, fjord_bin
        self.keep, self.kafka_heap, self.extra = keep, kafka_heap, dict(extra or {})
        self.run = name or uuid.uuid4().hex[:6]
        self.dir = tempfile.mkdtemp(prefix=f"fjt-{broker}-{self.run}-")
        self.net = None
        self.nodes = []
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self._admin = None
        self.closed = False
        _live_clusters.append(self)
        try:
            if net == "netns":
                self.net = Net(self.run, n)
                self.net.setup()
                hosts = [(self.net.ip(i), 9092, 9093) for i in range(1, n + 1)]
            elif net == "loopback":
                hosts = [("127.0.0.1", free_port(), free_port()) for _ in range(n)]
            else:
                raise ValueError(f"net must be loopback or netns, not {net!r}")
            for i, (h, p, c) in enumerate(hosts, 1):
                folder = os.path.join(self.dir, f"b{i}")
                os.makedirs(os.path.join(folder, "data"))
                self.nodes.append(Node(i, h, p, c, folder))
            self.bootstrap = ",".join(nd.bootstrap for nd in self.nodes)
            self._write_configs()
        except BaseException:
            self.close()
            raise

    # --- configuration ---

    def node_config(self, nd):
        voters = ",".join(f"{m.i}@{m.host}:{m.cport}" for m in self.nodes)
        cfg = {
            "node.id": str(nd.i),
            "process.roles": "broker,controller",
            "listeners": f"PLAINTEXT://{nd.host}:{nd.port},CONTROLLER://{nd.host}:{nd.cport}",
            "advertised.listeners": f"PLAINTEXT://{nd.host}:{nd.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": voters,
            "log.dirs": nd.data,
            "broker.rack": f"az{nd.i}",
            "offsets.topic.replication.factor": "3",
            "default.replication.factor": "3",
            "min.insync.replicas": "2",
            "group.initial.rebalance.delay.ms": "0",
        }
        cfg.update(FJORD_RAFT if self.broker == "fjord" else KAFKA_TUNING)
        cfg.update(self.extra)
        return cfg

    def _write_configs(self):
        for nd in self.nodes:
            with open(nd.props, "w") as f:
                for k, v in self.node_config(nd).items():
                    f.write(f"{k}={v}\n")
        if self.broker == "kafka":
            # One cluster id for all; the formats run side by side (a JVM each).
            env = dict(os.environ, KAFKA_TOOL_HEAP="256m")
            procs = []
            for nd in self.nodes:
                with open(nd.log_path, "ab") as lf:
                    procs.append((nd, subprocess.Popen(
                        ["bash", KAFKA_TOOL, "kafka-storage", "format", "-t", self.cluster_id, "-c", nd.props],
                        stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, env=env)))
            for nd, p in procs:
                if p.wait(timeout=180) != 0:
                    raise RuntimeError(f"kafka-storage format failed for broker {nd.i}:\n{tail(nd.log_path)}")

    def command(self, nd):
        if self.broker == "fjord":
            cmd = [self.fjord_bin, "start"]
            for k, v in self.node_config(nd).items():
                cmd += ["--override", f"{k}={v}"]
        else:
            cmd = ["bash", KAFKA_TOOL, "kafka-server-start", nd.props]
        # The broker dies with this process (the thread that started it), even on SIGKILL.
        cmd = ["setpriv", "--pdeathsig", "KILL", "--"] + cmd if shutil.which("setpriv") else cmd
        if self.net:
            cmd = ["ip", "netns", "exec", self.net.ns(nd.i)] + cmd
        return cmd

    # --- process control (call from the main thread: PDEATHSIG follows the starting thread) ---

    def node(self, i):
        return self.nodes[i - 1]

    def start(self, i, wait=True, timeout=120):
        nd = self.node(i)
        if nd.running():
            raise RuntimeError(f"broker {i} is already running")
        env = dict(os.environ, KAFKA_TOOL_HEAP=self.kafka_heap, NO_COLOR="1")
        with open(nd.log_path, "ab") as lf:
            lf.write(f"===== fault test: starting broker {i} on {nd.bootstrap} at {time.strftime('%H:%M:%S')} =====\n".encode())
            lf.flush()
            nd.proc = subprocess.Popen(self.command(nd), stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                       cwd=nd.folder, env=env, start_new_session=True)
        nd.stopped = False
        if wait:
            self.wait_ready(i, timeout)

    def start_all(self, timeout=180):
        for nd in self.nodes:
            if not nd.running():
                self.start(nd.i, wait=False)
        for nd in self.nodes:
            self.wait_ready(nd.i, timeout)
        self.wait_brokers(timeout)

    def wait_ready(self, i, timeout=120):
        """Waits until broker i answers ApiVersions on its client port."""
        nd = self.node(i)
        deadline = time.time() + timeout
        while True:
            if not nd.running():
                raise RuntimeError(f"broker {i} exited with {nd.proc.returncode if nd.proc else '?'} while starting; its log ends:\n{tail(nd.log_path, 60)}")
            if api_versions_answered(nd.host, nd.port):
                return
            if time.time() > deadline:
                raise RuntimeError(f"broker {i} did not answer on {nd.bootstrap} within {timeout}s; its log ends:\n{tail(nd.log_path, 60)}")
            time.sleep(0.1)

    def _signal(self, i, sig):
        nd = self.node(i)
        if nd.proc is None:
            return
        try:
            os.killpg(nd.proc.pid, sig)  # its own session and process group
        except ProcessLookupError:
            pass

    def kill9(self, i):
        nd = self.node(i)
        if nd.proc is None:
            return
        self._signal(i, signal.SIGKILL)
        nd.proc.wait()
        nd.stopped = False

    def sigstop(self, i):
        self._signal(i, signal.SIGSTOP)
        self.node(i).stopped = True

    def sigcont(self, i):
        self._signal(i, signal.SIGCONT)
        self.node(i).stopped = False

    def terminate(self, i, timeout=60):
        """SIGTERM and wait; SIGKILL if still running after `timeout`. Returns the seconds it took."""
        nd = self.node(i)
        if not nd.running():
            return 0.0
        if nd.stopped:
            self.sigcont(i)
        t0 = time.time()
        self._signal(i, signal.SIGTERM)
        try:
            nd.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"broker {i} still running {timeout}s after SIGTERM: SIGKILL")
            self.kill9(i)
        return time.time() - t0

    def restart(self, i, timeout=120):
        self.terminate(i)
        self.start(i, timeout=timeout)

    # --- network faults (netns mode) ---

    def _need_net(self, what):
        if self.net is None:
            raise RuntimeError(f"{what} needs --net netns")
        return self.net

    def isolate(self, i):
        self._need_net("isolate").isolate(i)

    def partition(self, i):
        self._need_net("partition").partition(i)

    def netem(self, i, delay_ms=200, jitter_ms=50, loss_pct=20, spec=None):
        return self._need_net("netem").netem(i, delay_ms, jitter_ms, loss_pct, spec)

    def heal(self, i):
        if self.net:
            self.net.heal(i)

    def heal_all(self):
        """Undoes every fault: network back, paused brokers continued, dead ones started."""
        for nd in self.nodes:
            self.heal(nd.i)
            if nd.stopped:
                self.sigcont(nd.i)
        for nd in self.nodes:
            if not nd.running():
                log(f"broker {nd.i} is not running (exit {nd.proc.returncode if nd.proc else '-'}): starting it")
                self.start(nd.i, wait=False)
        for nd in self.nodes:
            self.wait_ready(nd.i)

    # --- metadata ---

    def admin(self):
        if self._admin is None:
            from confluent_kafka.admin import AdminClient
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000,
                                       "reconnect.backoff.max.ms": 1000,
                                       "log_level": int(os.environ.get("FJT_CLIENT_LOG_LEVEL", "2"))})
        return self._admin

    def metadata(self, topic=None, timeout=5):
        return self.admin().list_topics(topic=topic, timeout=timeout)

    def describe(self, topic, timeout=5):
        """{partition: {"leader": id, "replicas": [...], "isr": [...], "error": str|None}} from a Metadata request."""
        md = self.metadata(topic, timeout)
        t = md.topics.get(topic)
        if t is None:
            return {}
        if t.error is not None and not t.partitions:
            raise RuntimeError(f"metadata of {topic}: {t.error}")
        return {p: {"leader": pm.leader, "replicas": list(pm.replicas), "isr": list(pm.isrs),
                    "error": str(pm.error) if pm.error is not None else None}
                for p, pm in sorted(t.partitions.items())}

    def leader_of(self, topic, partition, timeout=5):
        try:
            d = self.describe(topic, timeout).get(partition)
        except Exception:  # noqa: BLE001 - metadata unavailable counts as no leader
            return -1
        return d["leader"] if d else -1

    def wait_brokers(self, timeout=120):
        deadline = time.time() + timeout
        while True:
            try:
                if len(self.metadata(timeout=5).brokers) >= self.n:
                    return
            except Exception:  # noqa: BLE001
                pass
            if time.time() > deadline:
                raise RuntimeError(f"fewer than {self.n} brokers registered after {timeout}s")
            time.sleep(0.3)

    def wait_for_leaders(self, topic, timeout=60, full_isr=False, partitions=None):
        """Waits until every partition of `topic` has a live leader (and, with
        full_isr, all its replicas in sync). Returns the description, or raises."""
        deadline = time.time() + timeout
        last = None
        while True:
            try:
                d = self.describe(topic, timeout=5)
                last = d
                live = {nd.i for nd in self.nodes if nd.running() and not nd.stopped}
                ok = bool(d) and (partitions is None or len(d) >= partitions) and all(
                    v["leader"] in live and (not full_isr or sorted(v["isr"]) == sorted(v["replicas"])) for v in d.values())
                if ok:
                    return d
            except Exception as e:  # noqa: BLE001
                last = f"{type(e).__name__}: {e}"
            if time.time() > deadline:
                raise RuntimeError(f"{topic}: no {'full ISR' if full_isr else 'leader'} for every partition within {timeout}s; last metadata: {last}")
            time.sleep(0.2)

    def create_topic(self, topic, partitions=6, rf=3, configs=None, timeout=30):
        from confluent_kafka.admin import NewTopic
        deadline = time.time() + timeout
        while True:
            fs = self.admin().create_topics([NewTopic(topic, partitions, rf, config=dict(configs or {}))],
                                            request_timeout=10)
            try:
                fs[topic].result(timeout=15)
                return
            except Exception as e:  # noqa: BLE001
                msg = str(e)
                if "TOPIC_ALREADY_EXISTS" in msg or "already exists" in msg:
                    return
                if time.time() > deadline:
                    raise RuntimeError(f"creating {topic}: {msg}")
                time.sleep(0.5)

    # --- diagnostics and teardown ---

    def log_tails(self, lines=40):
        out = []
        for nd in self.nodes:
            state = "running" if nd.running() else f"exited {nd.proc.returncode}" if nd.proc else "never started"
            out.append(f"----- broker {nd.i} ({nd.bootstrap}, {state}{', SIGSTOPped' if nd.stopped else ''}): last {lines} lines of {nd.log_path} -----")
            out.append(tail(nd.log_path, lines))
        return "\n".join(out)

    def close(self, keep=None, keep_data=True):
        """Stops everything. `keep` (default: the constructor's) keeps the
        brokers' folders, and with keep_data=False only their logs and configs."""
        if self.closed:
            return
        self.closed = True
        for nd in self.nodes:
            if nd.proc is not None and nd.proc.poll() is None:
                try:
                    os.killpg(nd.proc.pid, signal.SIGCONT)
                    os.killpg(nd.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    nd.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
        if self.net is not None:
            self.net.teardown()
        self._admin = None
        if keep if keep is not None else self.keep:
            if not keep_data:
                for nd in self.nodes:
                    shutil.rmtree(nd.data, ignore_errors=True)
            log(f"kept the brokers' folders in {self.dir}" + ("" if keep_data else " (logs and configs only)"))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _live_clusters:
            _live_clusters.remove(self)


def main():
    ap = argparse.ArgumentParser(description="Starts a 3-broker cluster and holds it (for trying things by hand).")
    ap.add_argument("--broker", choices=["fjord", "kafka"], default="fjord")
    ap.add_argument("--fjord-bin")
    ap.add_argument("--net", choices=["loopback", "netns"], default="loopback")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--hold", type=float, default=30, help="seconds to keep it up")
    ap.add_argument("--keep", action="store_true", help="keep the data folders")
    a = ap.parse_args()
    c = Cluster(a.broker, a.nodes, a.net, a.fjord_bin, keep=a.keep)
    try:
        t0 = time.time()
        c.start_all()
        log(f"{a.broker} cluster up in {time.time() - t0:.1f}s: bootstrap.servers={c.bootstrap}")
        time.sleep(a.hold)
    finally:
        c.close()


if __name__ == "__main__":
    main()
