#!/usr/bin/env python3
"""Fjord against Apache Kafka on this machine, one broker kind after the other.

Started by run.sh (which builds fjord, fetches Kafka's jars and makes the
venv with matplotlib); README.md beside this file says what is measured and
how to read the result. `python3 compare.py --help` lists the flags.

Layouts, the same for both kinds (Kafka's setting names; fjord reads the very
same server.properties with `fjord start --config`):
  1 node:  process.roles=broker,controller, one voter.
  3 nodes: each broker+controller, three voters, racks az1..az3,
           min.insync.replicas=2.
Ports: node i listens for clients on base-port + i - 1 and for the quorum on
base-port + 1000 + i - 1, on 127.0.0.1.

Per layout: spawn the nodes, probe with `fjord bench --records 1` until a
produce is acknowledged (time from spawn), sit idle, read VmRSS, then the
workloads: kafka-producer-perf-test (broker CPU time read from /proc around
it), kafka-consumer-perf-test over the same records, `fjord bench` with
producers and consumers at once. Then the nodes are stopped and their data
removed before the next layout or kind starts.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LIBS = ROOT / ".cache" / "kafka-libs"
INTEROP_LIBS = ROOT / ".cache" / "interop-libs"
KAFKA_TOOL = ROOT / "tests" / "interop" / "kafka-tool.sh"
CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"  # Kafka's docs' example id; each run formats fresh folders
RECORD_SIZE = 1024
GIB = float(1 << 30)
MIB = float(1 << 20)

# What bin/kafka-server-start.sh and bin/kafka-run-class.sh give kafka.Kafka
# when no KAFKA_*_OPTS variable is set. kafka-server-start.sh sets the heap
# and passes `-name kafkaServer -loggc`, which turns on the GC log.
KAFKA_HEAP_OPTS = ["-Xmx1G", "-Xms1G"]
KAFKA_JVM_PERFORMANCE_OPTS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]
KAFKA_JMX_OPTS = [
    "-Dcom.sun.management.jmxremote=true",
    "-Dcom.sun.management.jmxremote.authenticate=false",
    "-Dcom.sun.management.jmxremote.ssl=false",
]


def kafka_gc_log_opts(log_dir):
    return [f"-Xlog:gc*:file={log_dir}/kafkaServer-gc.log:time,tags:filecount=10,filesize=100M"]


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    nodes: int
    partitions: int
    rf: int
    acks: str


WORKLOADS = [
    Workload("W1", "1 broker, 1 partition, acks=1", 1, 1, 1, "1"),
    Workload("W2", "1 broker, 1 partition, acks=all", 1, 1, 1, "all"),
    Workload("W3", "1 broker, 16 partitions, acks=1", 1, 16, 1, "1"),
    Workload("W4", "1 broker, 16 partitions, acks=all", 1, 16, 1, "all"),
    Workload("W5", "3 brokers, RF 3, 16 partitions, acks=all", 3, 16, 3, "all"),
]
KINDS = ("fjord", "kafka")
LABEL = {"fjord": "Fjord", "kafka": "Kafka"}


class Failed(Exception):
    """A step failed; the message says which and why."""


# --------------------------------------------------------------------------
# Processes: every one we start is remembered until it is reaped, so that a
# failure, Ctrl-C or SIGTERM kills exactly those (by pid). Each also gets
# PR_SET_PDEATHSIG, so none outlives this script even if it is SIGKILLed.

LIVE = {}  # pid -> (Popen, name)
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn(cmd, name, log_path, env=None):
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()
    LIVE[p.pid] = (p, name)
    return p


def reap(p):
    try:
        p.wait()
    finally:
        LIVE.pop(p.pid, None)


def kill_all():
    for p, _name in list(LIVE.values()):
        if p.poll() is None:
            p.kill()
        reap(p)


@dataclass
class Ran:
    rc: int
    out: str
    seconds: float


def run(cmd, timeout, out_path=None, env=None, check=True, what=None):
    """Runs a command to completion (killed after `timeout` s); stdout and
    stderr together, also written to `out_path`."""
    what = what or " ".join(str(c) for c in cmd[:3])
    t0 = time.monotonic()
    p = subprocess.Popen(
        [str(c) for c in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    LIVE[p.pid] = (p, what)
    timed_out = False
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        out, _ = p.communicate()
    finally:
        LIVE.pop(p.pid, None)
    text = out.decode("utf-8", "replace")
    if out_path:
        Path(out_path).write_text(text)
    ran = Ran(p.returncode, text, time.monotonic() - t0)
    if timed_out:
        raise Failed(f"{what} did not finish within {timeout} s; it printed:\n{excerpt(text)}")
    if check and ran.rc != 0:
        raise Failed(f"{what} exited with {ran.rc}; it printed:\n{excerpt(text)}")
    return ran


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tail(text, lines, width=400):
    """The last lines of a text, without colour codes, each cut to `width` characters."""
    return "\n".join(l[:width] for l in ANSI.sub("", text).splitlines()[-lines:])


def excerpt(text, head=8, last=12):
    """The start and the end of a long output (an error's message and where it ended)."""
    lines = tail(text, 10**9).splitlines()
    if len(lines) <= head + last:
        return "\n".join(lines)
    return "\n".join(lines[:head] + [f"[... {len(lines) - head - last} lines ...]"] + lines[-last:])


def kafka_tool(name, *args, timeout, out_path=None, check=True):
    return run(["bash", KAFKA_TOOL, name, *args], timeout, out_path=out_path, check=check, what=name)


# --------------------------------------------------------------------------
# /proc


CLK_TCK = os.sysconf("SC_CLK_TCK")


def memory(pid):
    """VmRSS and its anonymous part RssAnon (heap, stacks; not mapped files), in bytes."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "RssAnon"):
                found[key] = int(line.split()[1]) * 1024
    if len(found) != 2:
        raise Failed(f"no VmRSS/RssAnon in /proc/{pid}/status")
    return found["VmRSS"], found["RssAnon"]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def loadavg():
    return Path("/proc/loadavg").read_text().split()[0]


# --------------------------------------------------------------------------
# Broker processes


class Layout:
    """N broker+controller nodes of one kind over a fresh folder."""

    def __init__(self, kind, nodes, folder, base_port, fjord):
        self.kind = kind
        self.n = nodes
        self.folder = folder
        self.fjord = fjord
        self.ports = [base_port + i for i in range(nodes)]
        self.controller_ports = [base_port + 1000 + i for i in range(nodes)]
        self.procs = []
        self.format_s = None

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def node_dir(self, i):
        return self.folder / f"node-{i + 1}"

    def log_path(self, i):
        return self.node_dir(i) / "node.log"

    def settings(self, i):
        voters = ",".join(f"{j + 1}@127.0.0.1:{c}" for j, c in enumerate(self.controller_ports))
        rf = min(self.n, 3)
        s = [
            ("process.roles", "broker,controller"),
            ("node.id", str(i + 1)),
            ("controller.quorum.voters", voters),
            ("listeners", f"PLAINTEXT://127.0.0.1:{self.ports[i]},CONTROLLER://127.0.0.1:{self.controller_ports[i]}"),
            ("advertised.listeners", f"PLAINTEXT://127.0.0.1:{self.ports[i]}"),
            ("controller.listener.names", "CONTROLLER"),
            ("inter.broker.listener.name", "PLAINTEXT"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("log.dirs", str(self.node_dir(i) / "data")),
            ("offsets.topic.replication.factor", str(rf)),
            ("transaction.state.log.replication.factor", str(rf)),
            ("transaction.state.log.min.isr", str(min(rf, 2))),
            ("share.coordinator.state.topic.replication.factor", str(rf)),
            ("share.coordinator.state.topic.min.isr", str(min(rf, 2))),
            # kafka-consumer-perf-test joins a group: no 3 s wait for more members.
            ("group.initial.rebalance.delay.ms", "0"),
        ]
        if self.n > 1:
            s += [("broker.rack", f"az{i + 1}"), ("min.insync.replicas", "2")]
        return s

    def props_path(self, i):
        return self.node_dir(i) / "server.properties"

    def prepare(self):
        """Checks the ports, writes each node's server.properties and, for
        Kafka, formats its storage (timed; not part of the start-up figure)."""
        for p in self.ports + self.controller_ports:
            if not port_free(p):
                raise Failed(f"port {p} on 127.0.0.1 is in use: stop what uses it or pass another --base-port")
        for i in range(self.n):
            (self.node_dir(i) / "data").mkdir(parents=True)
            self.props_path(i).write_text("".join(f"{k}={v}\n" for k, v in self.settings(i)))
        if self.kind == "kafka":
            t0 = time.monotonic()
            for i in range(self.n):
                kafka_tool(
                    "kafka-storage", "format", "-t", CLUSTER_ID, "-c", self.props_path(i),
                    timeout=180, out_path=self.node_dir(i) / "format.txt",
                )
            self.format_s = (time.monotonic() - t0) / self.n

    def command(self, i):
        if self.kind == "fjord":
            return [self.fjord, "start", "--config", self.props_path(i)]
        java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else "java"
        return [
            java,
            *KAFKA_HEAP_OPTS,
            *KAFKA_JVM_PERFORMANCE_OPTS,
            *kafka_gc_log_opts(self.node_dir(i)),
            *KAFKA_JMX_OPTS,
            f"-Dkafka.logs.dir={self.node_dir(i)}",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-cp",
            f"{KAFKA_LIBS}/*:{INTEROP_LIBS}/*",
            "kafka.Kafka",
            self.props_path(i),
        ]

    def spawn(self):
        """Starts every node back to back; returns the monotonic time of the first spawn."""
        t0 = time.monotonic()
        for i in range(self.n):
            self.procs.append(spawn(self.command(i), f"{self.kind} node {i + 1}", self.log_path(i)))
        return t0

    def pids(self):
        return [p.pid for p in self.procs]

    def check_alive(self):
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise Failed(f"{self.kind} node {i + 1} exited with {p.returncode}; its log ends:\n{tail(self.log_text(i), 40)}")

    def log_text(self, i):
        try:
            return self.log_path(i).read_text(errors="replace")
        except OSError:
            return ""

    def memory(self):
        """(VmRSS, RssAnon) of each node, in MiB."""
        return [tuple(v / MIB for v in memory(pid)) for pid in self.pids()]

    def cpu(self):
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self, grace=30):
        """SIGTERM to every node at once, SIGKILL to those still there after `grace` s."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
            reap(p)
        self.procs = []


# --------------------------------------------------------------------------
# Parsing the tools' output

PRODUCER_RE = re.compile(
    r"(?P<records>\d+) records sent, (?P<records_per_s>[\d.]+) records/sec \((?P<mb_per_s>[\d.]+) MB/sec\), "
    r"(?P<avg_ms>[\d.]+) ms avg latency, (?P<max_ms>[\d.]+) ms max latency, (?P<p50_ms>[\d.]+) ms 50th, "
    r"(?P<p95_ms>[\d.]+) ms 95th, (?P<p99_ms>[\d.]+) ms 99th, (?P<p99_9_ms>[\d.]+) ms 99.9th"
)


def parse_producer(text):
    """kafka-producer-perf-test's summary: its last line with percentiles."""
    found = [m for m in PRODUCER_RE.finditer(text)]
    if not found:
        raise Failed(f"no summary line in kafka-producer-perf-test's output:\n{tail(text, 20)}")
    m = found[-1]
    return {k: (int(v) if k == "records" else float(v)) for k, v in m.groupdict().items()}


def parse_consumer(text):
    """kafka-consumer-perf-test without --show-detailed-stats: a header line
    (start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
    nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec)
    and one line of values."""
    lines = [l for l in text.splitlines() if l.strip()]
    for i, line in enumerate(lines):
        if "data.consumed.in.MB" in line and i + 1 < len(lines):
            names = [c.strip() for c in line.split(",")]
            values = [c.strip() for c in lines[i + 1].split(",")]
            if len(values) != len(names):
                break
            row = dict(zip(names, values))
            try:
                return {
                    "mb": float(row["data.consumed.in.MB"]),
                    "mb_per_s": float(row["MB.sec"]),
                    "records": int(row["data.consumed.in.nMsg"]),
                    "records_per_s": float(row["nMsg.sec"]),
                    "rebalance_ms": float(row["rebalance.time.ms"]),
                    "fetch_ms": float(row["fetch.time.ms"]),
                    "fetch_mb_per_s": float(row["fetch.MB.sec"]),
                    "fetch_records_per_s": float(row["fetch.nMsg.sec"]),
                }
            except (KeyError, ValueError):
                break
    raise Failed(f"no result in kafka-consumer-perf-test's output:\n{tail(text, 20)}")


def parse_bench(path):
    """The fields of `fjord bench --output` (client/src/report.rs) we report."""
    try:
        doc = json.loads(Path(path).read_text())
        s = doc["summary"]
        pct = lambda d: {k: float(d[k]) for k in ("p50", "p95", "p99", "p99_9", "max")} | {"count": int(d["count"])}
        return {
            "duration_s": float(s["duration_s"]),
            "publish_mb_per_s": float(s["publish"]["mb_per_s"]),
            "publish_records_per_s": float(s["publish"]["records_per_s"]),
            "consume_mb_per_s": float(s["consume"]["mb_per_s"]),
            "consume_records_per_s": float(s["consume"]["records_per_s"]),
            "publish_latency_ms": pct(s["publish_latency_ms"]),
            "end_to_end_latency_ms": pct(s["end_to_end_latency_ms"]),
            "publish_errors": int(s["publish_errors"]),
            "intervals": len(doc.get("intervals", [])),
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Failed(f"cannot read fjord bench's results {path}: {e!r}")


# --------------------------------------------------------------------------
# The run


def say(msg):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def duration_arg(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 20s, 500ms or 2m")
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def fmt_duration(seconds):
    """For fjord bench's --duration and --warmup: 20s, 1.5s, 500ms, 0s."""
    if seconds == 0 or seconds >= 1:
        return f"{seconds:g}s"
    return f"{round(seconds * 1000)}ms"


class Runner:
    def __init__(self, args, out_dir, raw_dir, work):
        self.a = args
        self.out_dir = out_dir
        self.raw = raw_dir
        self.work = work
        self.results = {k: {"workloads": {}, "resources": {}} for k in KINDS}

    def bench_cmd(self, layout, *extra):
        return [self.a.fjord, "bench", "--bootstrap-server", layout.bootstrap, *extra]

    def first_ack(self, layout, t0, rf):
        """Runs `fjord bench --records 1` until it exits 0; seconds since t0."""
        deadline = t0 + self.a.startup_limit
        attempt = 0
        while True:
            attempt += 1
            layout.check_alive()
            cmd = self.bench_cmd(
                layout, "--topic-prefix", f"startup{attempt}", "--partitions", "1", "--replication-factor", str(rf),
                "--producers", "1", "--consumers", "0", "--records", "1", "--warmup", "0s", "--acks", "all",
            )
            try:
                r = run(cmd, self.a.probe_timeout, check=False, what="fjord bench (start-up probe)")
            except Failed as e:  # the attempt hung: count it as one more failed try
                r = Ran(None, str(e), self.a.probe_timeout)
            now = time.monotonic()
            if r.rc == 0:
                return now - t0, attempt
            if r.rc not in (0, 1, None):  # 2: bad arguments; 101: a panic; < 0: a signal; None: timed out
                raise Failed(f"fjord bench (start-up probe) exited with {r.rc}:\n{excerpt(r.out)}")
            if now > deadline:
                raise Failed(
                    f"no produce acknowledged by {layout.kind} within {self.a.startup_limit} s of its start "
                    f"({attempt} attempts); the last one said:\n{excerpt(r.out)}"
                )
            time.sleep(0.05)

    def run_layout(self, kind, nodes, workloads):
        name = f"{kind}-{nodes}node"
        res = self.results[kind]["resources"]
        folder = self.work / name
        folder.mkdir()
        raw = self.raw / kind
        raw.mkdir(parents=True, exist_ok=True)
        layout = Layout(kind, nodes, folder, self.a.base_port, self.a.fjord)
        res[f"load_avg_before_{nodes}node"] = loadavg()
        say(f"{name}: starting (load average {loadavg()})")
        try:
            layout.prepare()
            if layout.format_s is not None:
                res[f"format_s_{nodes}node"] = layout.format_s
            t0 = layout.spawn()
            startup, attempts = self.first_ack(layout, t0, rf=min(nodes, 3))
            res[f"first_ack_s_{nodes}node"] = startup
            say(f"{name}: first produce acknowledged {startup:.2f} s after spawn ({attempts} attempts)")
            cpu0 = layout.cpu()
            time.sleep(self.a.idle)
            layout.check_alive()
            res[f"idle_cpu_pct_{nodes}node"] = 100 * (layout.cpu() - cpu0) / self.a.idle / nodes
            self.record_memory(layout, res, f"idle_{{}}_mib_{nodes}node", f"{name}: idle")
            for w in workloads:
                self.results[kind]["workloads"][w.id] = self.run_workload(layout, w, raw)
            layout.check_alive()
            if workloads:
                self.record_memory(layout, res, f"after_{{}}_mib_{nodes}node", f"{name}: after the workloads")
        except Failed:
            for i in range(layout.n):
                say(f"{name}: node {i + 1}'s log ends:\n{tail(layout.log_text(i), 25)}")
            raise
        finally:
            layout.stop()
            if not self.a.keep:
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def record_memory(layout, res, key, what):
        """Mean VmRSS and RssAnon per node into res[key.format("rss"|"anon")], and each node's."""
        mem = layout.memory()
        for j, name in enumerate(("rss", "anon")):
            res[key.format(name)] = sum(m[j] for m in mem) / len(mem)
            res[key.format(name) + "_each"] = [m[j] for m in mem]
        say(f"{what}: RSS per node {', '.join(f'{m[0]:.0f}' for m in mem)} MiB "
            f"(anonymous {', '.join(f'{m[1]:.0f}' for m in mem)} MiB)")

    def run_workload(self, layout, w, raw):
        a = self.a
        tag = f"{layout.kind} {w.id}"
        topic = f"{w.id.lower()}-perf"
        boot = layout.bootstrap
        n = a.records
        tool_timeout = 300 + n // 2000
        out = {}
        kafka_tool(
            "kafka-topics", "--bootstrap-server", boot, "--create", "--topic", topic,
            "--partitions", str(w.partitions), "--replication-factor", str(w.rf), timeout=180,
        )

        cpu0 = layout.cpu()
        r = kafka_tool(
            "kafka-producer-perf-test", "--bootstrap-server", boot, "--topic", topic, "--num-records", str(n),
            "--record-size", str(RECORD_SIZE), "--throughput", "-1", "--command-property", f"acks={w.acks}",
            timeout=tool_timeout, out_path=raw / f"{w.id.lower()}-producer-perf-test.txt",
        )
        cpu = layout.cpu() - cpu0
        prod = parse_producer(r.out)
        if prod["records"] != n:
            raise Failed(f"{tag}: kafka-producer-perf-test sent {prod['records']} records, not {n}")
        out["producer"] = prod
        out["broker_cpu_s"] = cpu
        out["cpu_s_per_gib"] = cpu / (n * RECORD_SIZE / GIB)
        layout.check_alive()
        say(
            f"{tag}: producer-perf-test {prod['mb_per_s']:.1f} MB/s, p99 {prod['p99_ms']:.0f} ms, "
            f"broker CPU {cpu:.1f} s ({out['cpu_s_per_gib']:.2f} s/GiB)"
        )

        r = kafka_tool(
            "kafka-consumer-perf-test", "--bootstrap-server", boot, "--topic", topic, "--num-records", str(n),
            "--timeout", "60000", "--group", f"compare-{w.id.lower()}",
            timeout=tool_timeout, out_path=raw / f"{w.id.lower()}-consumer-perf-test.txt",
        )
        cons = parse_consumer(r.out)
        if cons["records"] < n:
            raise Failed(f"{tag}: kafka-consumer-perf-test read {cons['records']} records of {n}")
        out["consumer"] = cons
        layout.check_alive()
        say(f"{tag}: consumer-perf-test {cons['mb_per_s']:.1f} MB/s ({cons['fetch_mb_per_s']:.1f} MB/s fetching)")

        json_path = raw / f"{w.id.lower()}-fjord-bench.json"
        cmd = self.bench_cmd(
            layout, "--topic-prefix", f"{w.id.lower()}-bench", "--partitions", str(w.partitions),
            "--replication-factor", str(w.rf), "--record-size", str(RECORD_SIZE),
            "--producers", str(a.bench_producers), "--consumers", str(a.bench_consumers), "--rate", str(a.bench_rate),
            "--acks", w.acks, "--duration", fmt_duration(a.duration), "--warmup", fmt_duration(a.warmup),
            "--output", json_path, "--plots", raw / f"{w.id.lower()}-fjord-bench-plots",
        )
        run(cmd, a.warmup + a.duration + 180, out_path=raw / f"{w.id.lower()}-fjord-bench.txt", what=f"fjord bench ({tag})")
        bench = parse_bench(json_path)
        out["bench"] = bench
        layout.check_alive()
        say(
            f"{tag}: fjord bench publish {bench['publish_mb_per_s']:.1f} MB/s, consume {bench['consume_mb_per_s']:.1f} MB/s, "
            f"publish p99 {bench['publish_latency_ms']['p99']:.1f} ms, end-to-end p99 {bench['end_to_end_latency_ms']['p99']:.1f} ms"
        )
        return out


# --------------------------------------------------------------------------
# Report

# (key, label, better, unit/format, getter)
def _g(*path):
    def get(d):
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d

    return get


WORKLOAD_METRICS = [
    ("kafka-producer-perf-test", [
        ("produce MB/s", "higher", "{:.1f}", _g("producer", "mb_per_s")),
        ("produce records/s", "higher", "{:,.0f}", _g("producer", "records_per_s")),
        ("latency avg (ms)", "lower", "{:.1f}", _g("producer", "avg_ms")),
        ("latency p50 (ms)", "lower", "{:.0f}", _g("producer", "p50_ms")),
        ("latency p95 (ms)", "lower", "{:.0f}", _g("producer", "p95_ms")),
        ("latency p99 (ms)", "lower", "{:.0f}", _g("producer", "p99_ms")),
        ("latency p99.9 (ms)", "lower", "{:.0f}", _g("producer", "p99_9_ms")),
        ("latency max (ms)", "lower", "{:.0f}", _g("producer", "max_ms")),
        ("broker CPU s per GiB produced", "lower", "{:.2f}", _g("cpu_s_per_gib")),
    ]),
    ("kafka-consumer-perf-test", [
        ("consume MB/s (with group join)", "higher", "{:.1f}", _g("consumer", "mb_per_s")),
        ("consume records/s (with group join)", "higher", "{:,.0f}", _g("consumer", "records_per_s")),
        ("consume MB/s (fetching only)", "higher", "{:.1f}", _g("consumer", "fetch_mb_per_s")),
    ]),
    ("fjord bench (producers and consumers together)", [
        ("publish MB/s", "higher", "{:.1f}", _g("bench", "publish_mb_per_s")),
        ("consume MB/s", "higher", "{:.1f}", _g("bench", "consume_mb_per_s")),
        ("publish latency p50 (ms)", "lower", "{:.2f}", _g("bench", "publish_latency_ms", "p50")),
        ("publish latency p99 (ms)", "lower", "{:.2f}", _g("bench", "publish_latency_ms", "p99")),
        ("publish latency p99.9 (ms)", "lower", "{:.2f}", _g("bench", "publish_latency_ms", "p99_9")),
        ("end-to-end latency p50 (ms)", "lower", "{:.2f}", _g("bench", "end_to_end_latency_ms", "p50")),
        ("end-to-end latency p99 (ms)", "lower", "{:.2f}", _g("bench", "end_to_end_latency_ms", "p99")),
        ("end-to-end latency p99.9 (ms)", "lower", "{:.2f}", _g("bench", "end_to_end_latency_ms", "p99_9")),
        ("publish errors", "lower", "{:.0f}", _g("bench", "publish_errors")),
    ]),
]

RESOURCE_METRICS = [
    ("idle RSS per broker, 1 node (MiB)", "lower", "{:.0f}", _g("idle_rss_mib_1node")),
    ("idle RSS per broker, 3 nodes (MiB, mean)", "lower", "{:.0f}", _g("idle_rss_mib_3node")),
    ("idle anonymous RSS per broker, 1 node (MiB)", "lower", "{:.0f}", _g("idle_anon_mib_1node")),
    ("idle anonymous RSS per broker, 3 nodes (MiB, mean)", "lower", "{:.0f}", _g("idle_anon_mib_3node")),
    ("RSS per broker after its workloads, 1 node (MiB)", "lower", "{:.0f}", _g("after_rss_mib_1node")),
    ("RSS per broker after its workloads, 3 nodes (MiB, mean)", "lower", "{:.0f}", _g("after_rss_mib_3node")),
    ("anonymous RSS per broker after its workloads, 1 node (MiB)", "lower", "{:.0f}", _g("after_anon_mib_1node")),
    ("anonymous RSS per broker after its workloads, 3 nodes (MiB, mean)", "lower", "{:.0f}", _g("after_anon_mib_3node")),
    ("idle CPU per broker, 1 node (% of a core)", "lower", "{:.2f}", _g("idle_cpu_pct_1node")),
    ("idle CPU per broker, 3 nodes (% of a core)", "lower", "{:.2f}", _g("idle_cpu_pct_3node")),
    ("start to first acknowledged produce, 1 node (s)", "lower", "{:.2f}", _g("first_ack_s_1node")),
    ("start to first acknowledged produce, 3 nodes, RF 3 (s)", "lower", "{:.2f}", _g("first_ack_s_3node")),
]


def fmt(value, spec):
    return "–" if value is None else spec.format(value)


def ratio(f, k):
    if f is None or k is None or k == 0:
        return "–"
    return f"{f / k:.2f}"


def table(rows, fjord, kafka):
    lines = ["| metric | better | Fjord | Kafka | Fjord/Kafka |", "| --- | --- | ---: | ---: | ---: |"]
    for label, better, spec, get in rows:
        f, k = get(fjord), get(kafka)
        lines.append(f"| {label} | {better} | {fmt(f, spec)} | {fmt(k, spec)} | {ratio(f, k)} |")
    return lines


def machine_info(fjord):
    def cmd(*c):
        try:
            r = subprocess.run(c, capture_output=True, text=True, timeout=60)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = cmd("git", "-C", str(ROOT), "rev-parse", "HEAD")
    dirty = cmd("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else "java"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "os": cmd("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME") or platform.platform(),
        "java": cmd(java, "-version").splitlines()[0] if cmd(java, "-version") else "unknown",
        "kafka": (KAFKA_LIBS / ".version").read_text().strip() if (KAFKA_LIBS / ".version").exists() else "unknown",
        "fjord_commit": (commit or "unknown") + (" with uncommitted changes" if dirty else ""),
        "fjord_version": cmd(str(fjord), "--version"),
    }


def kafka_jvm_line():
    opts = KAFKA_HEAP_OPTS + KAFKA_JVM_PERFORMANCE_OPTS + kafka_gc_log_opts("<node dir>") + KAFKA_JMX_OPTS
    return " ".join(opts)


def write_report(path, date, runner, machine, workloads, chart_names, started, finished):
    a = runner.a
    f_all, k_all = runner.results["fjord"], runner.results["kafka"]
    rel = f"{date}"
    lines = [
        f"# Fjord vs Apache Kafka {machine['kafka']}: {date}",
        "",
        "Made by `bash benches/compare/run.sh` (see `benches/compare/README.md`). The two brokers ran one after the",
        "other on this machine, never at once, each over fresh data folders, with the same `server.properties`",
        "(Kafka's setting names; fjord reads the same file with `fjord start --config`). Every client ran on the",
        "same machine and shared its cores with the brokers.",
        "",
        "## Machine and software",
        "",
        f"- CPUs: {machine['nproc']} × {machine['cpu']}; RAM {machine['ram_gib']} GiB; kernel {machine['kernel']}; {machine['os']}",
        f"- Java: {machine['java']}",
        f"- Apache Kafka {machine['kafka']} (broker and tools: the jars from Maven Central, `scripts/fetch-kafka.sh`)",
        f"- Fjord: `{machine['fjord_version']}`, release build of commit {machine['fjord_commit']}",
        f"- Run: {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC",
        "",
        "Kafka's JVM, as `bin/kafka-server-start.sh` starts `kafka.Kafka` when no `KAFKA_*_OPTS` variable is set",
        "(its heap, and `bin/kafka-run-class.sh`'s performance, GC log and JMX defaults):",
        "",
        f"    java {kafka_jvm_line()} kafka.Kafka server.properties",
        "",
        "Logging: SLF4J's simple binding at INFO to a file (the distribution logs through log4j2 at INFO).",
        "",
        "## Parameters",
        "",
        f"- kafka-producer-perf-test: {a.records:,} records of {RECORD_SIZE} B per workload, `--throughput -1`, the",
        "  producer's defaults but for `acks` (batch.size 16384, linger.ms 5, no compression, buffer.memory 32 MiB);",
        "  kafka-consumer-perf-test then reads those records from the beginning in a new group.",
        f"- fjord bench: {a.bench_producers} producer(s) and {a.bench_consumers} consumer(s) together,"
        f" rate {'unlimited' if a.bench_rate == 0 else f'{a.bench_rate} records/s'},"
        f" {fmt_duration(a.warmup)} warm-up then {fmt_duration(a.duration)} measured, on topics of its own.",
        "- Broker CPU: utime + stime of every broker process (`/proc/<pid>/stat`) around the producer-perf-test run,",
        "  per GiB of record bytes produced (records × 1024 / 2^30).",
        f"- Idle RSS: VmRSS (`/proc/<pid>/status`) after the first acknowledged produce and {a.idle:g} s idle, and its",
        "  anonymous part RssAnon (heap, stacks: not mapped files; fjord maps its log segments, so its VmRSS grows",
        "  with the log pages it touches, which the kernel can drop).",
        "- Start to first acknowledged produce: from spawning the broker process(es) to the first exit 0 of",
        "  `fjord bench --records 1 --acks all` (creates a 1-partition topic, produces one record), retried every 50 ms.",
        "  Kafka's `kafka-storage format` runs before and is not counted (its time is in the resource table).",
        "- MB is 2^20 bytes, as Kafka's perf tools count. Fjord/Kafka above 1 is better for \"higher\" rows,",
        "  below 1 for \"lower\" rows.",
        "",
    ]
    if any(chart_names.values()):
        lines += ["## Charts", ""]
        for title, name in chart_names.items():
            if name:
                lines.append(f"![{title}]({rel}/{name})")
        lines += ["", f"Raw outputs (perf-test text, fjord bench JSON and its own charts) are in `{rel}/raw/`.", ""]

    lines += ["## Summary: Fjord/Kafka", "", "| workload | produce MB/s ↑ | produce p99 ↓ | consume MB/s ↑ | bench publish MB/s ↑ | bench e2e p99 ↓ | CPU s/GiB ↓ |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in workloads:
        f, k = f_all["workloads"].get(w.id, {}), k_all["workloads"].get(w.id, {})
        cells = [
            ratio(_g(*p)(f), _g(*p)(k))
            for p in (("producer", "mb_per_s"), ("producer", "p99_ms"), ("consumer", "mb_per_s"), ("bench", "publish_mb_per_s"),
                      ("bench", "end_to_end_latency_ms", "p99"), ("cpu_s_per_gib",))
        ]
        lines.append(f"| {w.id}: {w.title} | " + " | ".join(cells) + " |")
    lines.append("")

    for w in workloads:
        f, k = f_all["workloads"].get(w.id, {}), k_all["workloads"].get(w.id, {})
        lines += [f"## {w.id}: {w.title}", ""]
        for section, rows in WORKLOAD_METRICS:
            lines += [f"{section}:", ""] + table(rows, f, k) + [""]

    res_rows = list(RESOURCE_METRICS)
    for w in workloads:
        res_rows.append((f"broker CPU s per GiB produced, {w.id}", "lower", "{:.2f}",
                         (lambda wid: lambda r: r.get("_workloads", {}).get(wid, {}).get("cpu_s_per_gib"))(w.id)))
    f_res = dict(f_all["resources"], _workloads=f_all["workloads"])
    k_res = dict(k_all["resources"], _workloads=k_all["workloads"])
    shown = [r for r in res_rows if r[3](f_res) is not None or r[3](k_res) is not None]
    lines += ["## Resources", ""] + table(shown, f_res, k_res) + [""]
    fmt_rows = [(label, v) for label, v in (("1 node", k_all["resources"].get("format_s_1node")), ("3 nodes, per node", k_all["resources"].get("format_s_3node"))) if v is not None]
    if fmt_rows:
        lines.append("Kafka's `kafka-storage format` before its first start (not in the figures above; fjord has no such step): "
                     + ", ".join(f"{v:.2f} s ({label})" for label, v in fmt_rows) + ".")
        lines.append("")
    loads = []
    for kind in KINDS:
        for n in (1, 3):
            v = runner.results[kind]["resources"].get(f"load_avg_before_{n}node")
            if v is not None:
                loads.append(f"{LABEL[kind]} {n} node{'s' if n > 1 else ''}: {v}")
    if loads:
        lines += ["1-minute load average before each layout started (other work on the machine skews results): " + "; ".join(loads) + ".", ""]
    Path(path).write_text("\n".join(lines))


# --------------------------------------------------------------------------
# Charts


COLORS = {"fjord": "#1f77b4", "kafka": "#d62728"}


def charts(runner, workloads, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = runner.results
    ids = [w.id for w in workloads]

    def bars(ax, title, labels, values, ylabel, log=False):
        """values: kind -> list aligned with labels (None for missing)."""
        width = 0.38
        xs = range(len(labels))
        for j, kind in enumerate(KINDS):
            vals = [v if v is not None else 0 for v in values[kind]]
            pos = [x + (j - 0.5) * width for x in xs]
            b = ax.bar(pos, vals, width, label=LABEL[kind], color=COLORS[kind])
            for rect, v in zip(b, values[kind]):
                if v is not None:
                    ax.annotate(f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}", (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                                ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.legend(fontsize=8)

    def per_workload(*path):
        return {k: [_g(*path)(res[k]["workloads"].get(i, {})) for i in ids] for k in KINDS}

    def wants_log(values):
        vals = [v for k in KINDS for v in values[k] if v]
        return len(vals) > 1 and max(vals) / min(vals) > 50

    names = {}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (title, path) in zip(axes, [
        ("kafka-producer-perf-test: produce MB/s", ("producer", "mb_per_s")),
        ("kafka-consumer-perf-test: consume MB/s", ("consumer", "mb_per_s")),
        ("fjord bench: publish MB/s (with consumers)", ("bench", "publish_mb_per_s")),
    ]):
        bars(ax, title, ids, per_workload(*path), "MB/s (2^20 B), higher is better")
    fig.suptitle("Throughput, Fjord vs Kafka (1 KiB records)")
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png", dpi=110)
    plt.close(fig)
    names["Throughput"] = "throughput.png"

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (title, path) in zip(axes, [
        ("kafka-producer-perf-test: produce latency p99", ("producer", "p99_ms")),
        ("fjord bench: publish latency p99", ("bench", "publish_latency_ms", "p99")),
        ("fjord bench: end-to-end latency p99", ("bench", "end_to_end_latency_ms", "p99")),
    ]):
        v = per_workload(*path)
        bars(ax, title, ids, v, "ms, lower is better", log=wants_log(v))
    fig.suptitle("p99 latency, Fjord vs Kafka")
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png", dpi=110)
    plt.close(fig)
    names["p99 latency"] = "latency.png"

    r = {k: res[k]["resources"] for k in KINDS}
    layouts = [n for n in (1, 3) if any(f"idle_rss_mib_{n}node" in r[k] for k in KINDS)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    labels = [f"{n} node{'s' if n > 1 else ''}" for n in layouts]
    bars(axes[0], "idle RSS per broker", labels, {k: [r[k].get(f"idle_rss_mib_{n}node") for n in layouts] for k in KINDS}, "MiB, lower is better")
    bars(axes[1], "start to first acknowledged produce", labels, {k: [r[k].get(f"first_ack_s_{n}node") for n in layouts] for k in KINDS}, "seconds, lower is better")
    bars(axes[2], "broker CPU per GiB produced (producer-perf-test)", ids, per_workload("cpu_s_per_gib"), "CPU seconds per GiB, lower is better")
    fig.suptitle("Resources, Fjord vs Kafka")
    fig.tight_layout()
    fig.savefig(out_dir / "resources.png", dpi=110)
    plt.close(fig)
    names["Resources"] = "resources.png"
    return names


# --------------------------------------------------------------------------
# Checks


def missing_numbers(runner, workloads, kinds):
    """Every number the report needs that is missing or zero (errors: nonzero)."""
    bad = []
    for kind in kinds:
        r = runner.results[kind]
        for n in sorted({w.nodes for w in workloads} | {1}):
            keys = [f"first_ack_s_{n}node", f"idle_rss_mib_{n}node", f"idle_anon_mib_{n}node"]
            if any(w.nodes == n for w in workloads):
                keys += [f"after_rss_mib_{n}node", f"after_anon_mib_{n}node"]
            for key in keys:
                if not r["resources"].get(key):
                    bad.append(f"{kind}: {key}")
        for w in workloads:
            d = r["workloads"].get(w.id)
            if d is None:
                bad.append(f"{kind} {w.id}: no results")
                continue
            for section, rows in WORKLOAD_METRICS:
                for label, _better, _spec, get in rows:
                    v = get(d)
                    if label == "publish errors":
                        if v != 0:
                            bad.append(f"{kind} {w.id}: fjord bench publish errors = {v}")
                    elif label in ("latency p50 (ms)", "latency avg (ms)"):
                        if v is None:  # may round to 0 ms on a fast broker
                            bad.append(f"{kind} {w.id}: {section}: {label} missing")
                    elif not v:
                        bad.append(f"{kind} {w.id}: {section}: {label} is {v}")
    return bad


# --------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(
        description="Fjord vs Apache Kafka: the same workloads against each, one after the other (see README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--smoke", action="store_true",
                   help="tiny bounded run for CI: W1 and the start-up/RSS figures only, 20,000 records, "
                        "fjord bench 1s+3s, output to a temporary folder; exits 1 if a number is missing or zero")
    p.add_argument("--records", type=int, help="records per kafka-producer-perf-test run (default 1000000; smoke 20000)")
    p.add_argument("--duration", type=duration_arg, help="fjord bench's measured window (default 20s; smoke 3s)")
    p.add_argument("--warmup", type=duration_arg, help="fjord bench's warm-up (default 5s; smoke 1s)")
    p.add_argument("--bench-producers", type=int, default=1, help="fjord bench --producers")
    p.add_argument("--bench-consumers", type=int, default=1, help="fjord bench --consumers")
    p.add_argument("--bench-rate", type=int, default=0, help="fjord bench --rate (records/s over all producers; 0 = as fast as possible)")
    p.add_argument("--workloads", help="comma-separated subset of W1..W5 (default all; smoke W1)")
    p.add_argument("--brokers", default="fjord,kafka", help="which kinds to run, comma-separated")
    p.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading RSS")
    p.add_argument("--base-port", type=int, default=29092, help="node i: clients on base+i-1, quorum on base+1000+i-1")
    p.add_argument("--out", type=Path, help="results folder (default benches/results; smoke: a new temporary folder)")
    p.add_argument("--date", help="name of the report (default: today, UTC, YYYY-MM-DD)")
    p.add_argument("--fjord", type=Path, default=ROOT / "target" / "release" / "fjord", help="the fjord binary")
    p.add_argument("--probe-timeout", type=float, default=10.0, help="seconds one start-up probe may take")
    p.add_argument("--startup-limit", type=float, default=180.0, help="seconds a broker may take to acknowledge its first produce")
    p.add_argument("--time-limit", type=float, help="give up after this many seconds in all (default 3600; smoke 600)")
    p.add_argument("--keep", action="store_true", help="keep the brokers' data folders and logs (printed at the end)")
    a = p.parse_args()

    a.records = a.records or (20_000 if a.smoke else 1_000_000)
    a.duration = a.duration if a.duration is not None else (3.0 if a.smoke else 20.0)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if a.smoke else 5.0)
    a.time_limit = a.time_limit or (600.0 if a.smoke else 3600.0)
    chosen = (a.workloads or ("W1" if a.smoke else ",".join(w.id for w in WORKLOADS))).upper().split(",")
    unknown = [c for c in chosen if c not in {w.id for w in WORKLOADS}]
    kinds = [k.strip() for k in a.brokers.split(",") if k.strip()]
    if unknown or not chosen or any(k not in KINDS for k in kinds) or not kinds:
        p.error(f"--workloads takes W1..W5 and --brokers fjord,kafka (got {a.workloads!r}, {a.brokers!r})")
    workloads = [w for w in WORKLOADS if w.id in chosen]
    if a.records <= 0 or a.duration <= 0 or a.warmup < 0:
        p.error("--records and --duration must be positive")

    for need, what in ((a.fjord, "the fjord binary (cargo build --release --bin fjord)"),
                       (KAFKA_LIBS / ".version", "Kafka's jars (bash scripts/fetch-kafka.sh)"),
                       (INTEROP_LIBS / ".pom-sha256", "the SLF4J binding (bash scripts/install-test-deps.sh)")):
        if not Path(need).exists():
            sys.exit(f"compare: {what} is missing: {need}")
    probe = subprocess.run([str(a.fjord), "bench", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"compare: `{a.fjord} bench` is not there yet (exit {probe.returncode}): {probe.stderr.strip()[:300]}")

    started = datetime.datetime.now(datetime.timezone.utc)
    date = a.date or f"{started:%Y-%m-%d}"
    if a.out is None:
        a.out = Path(tempfile.mkdtemp(prefix="fjord-compare-smoke-")) if a.smoke else ROOT / "benches" / "results"
    a.out.mkdir(parents=True, exist_ok=True)
    report = a.out / f"{date}.md"
    assets = a.out / date
    if assets.exists():
        shutil.rmtree(assets)
    raw = assets / "raw"
    raw.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="fjord-compare-"))

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    def on_alarm(_signum, _frame):
        raise Failed(f"the whole run took longer than --time-limit {a.time_limit:g} s")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    # Also when started with SIGINT ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, a.time_limit)

    runner = Runner(a, a.out, raw, work)
    say(f"compare: {', '.join(w.id for w in workloads)} against {', '.join(kinds)}; "
        f"{a.records:,} records per perf-test run, fjord bench {fmt_duration(a.warmup)} + {fmt_duration(a.duration)}; "
        f"report {report}")
    status = 0
    try:
        machine = machine_info(a.fjord)
        # Interleaved by layout (fjord, Kafka, fjord, Kafka) so that a change in
        # the machine's other load weighs on both alike.
        layouts = [1] + ([3] if any(w.nodes == 3 for w in workloads) else [])
        for n in layouts:
            for kind in kinds:
                runner.run_layout(kind, n, [w for w in workloads if w.nodes == n])
        signal.setitimer(signal.ITIMER_REAL, 0)
        finished = datetime.datetime.now(datetime.timezone.utc)
        (assets / "results.json").write_text(json.dumps(
            {"machine": machine, "args": {k: str(v) for k, v in vars(a).items()}, "results": runner.results,
             "started": started.isoformat(), "finished": finished.isoformat()}, indent=2))
        chart_names = charts(runner, workloads, assets)
        write_report(report, date, runner, machine, workloads, chart_names, started, finished)
        say(f"report: {report} (charts and raw outputs in {assets})")
        bad = missing_numbers(runner, workloads, kinds)
        if bad:
            say("missing or zero numbers:\n  " + "\n  ".join(bad))
            status = 1
        if a.smoke:
            print(report.read_text())
    except Failed as e:
        say(f"FAILED: {e}")
        status = 1
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        kill_all()
        if a.keep:
            say(f"brokers' folders and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
