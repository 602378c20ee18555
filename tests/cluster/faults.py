"""Randomized fault runs against a 3-broker cluster, each checked by checker.py.

    python3 tests/cluster/faults.py --broker fjord|kafka [--fjord-bin PATH] [--runs N] [--seed S]
        [--net loopback|netns] [--faults kill,stop,rolling,isolate,partition,netem] [--time-budget SECONDS]

One cluster serves every run (a new topic per run: 6 partitions, RF 3,
min.insync.replicas=2); a run that fails gets its brokers' log tails printed
and the next run a fresh cluster. Each run:

1. creates its topic and waits until every partition has its full ISR;
2. starts the checker's workload: two idempotent acks=all producers and a
   consumer reading from the beginning;
3. injects one fault (the faults cycle in a seeded random order, so every
   kind comes up): `kill` SIGKILLs a partition leader and restarts it after
   1-4 s; `stop` SIGSTOPs a leader for 2-7 s; `rolling` restarts every broker
   in turn (SIGTERM, start, wait for the full ISR); and with --net netns,
   `isolate` cuts a leader off the network for 3-8 s, `partition` cuts it off
   from the other brokers only (clients still reach it), `netem` delays and
   drops a broker's packets for 4-8 s;
4. heals everything, produces a few seconds more, stops producing, waits until
   every partition has a leader, reads every partition to its high watermark
   and checks (checker.check): no acknowledged record lost or moved, offsets
   dense, no duplicates, nothing served to the consumer that was later
   truncated.

Prints one line per run and a summary; exits 1 if any run failed.
"""

import argparse
import json
import os
import random
import sys
import time
import traceback
from collections import Counter

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Workload, add_client_failures, check, read_final  # noqa: E402
from cluster import Cluster, log  # noqa: E402

PROCESS_FAULTS = ["kill", "stop", "rolling"]
NET_FAULTS = ["isolate", "partition", "netem"]
PARTITIONS = 6


class Run:
    def __init__(self, k, cluster, rng, fault, args):
        self.k, self.c, self.rng, self.fault, self.args = k, cluster, rng, fault, args
        self.topic = f"fjt-{cluster.run}-r{k}"
        self.notes = []

    def note(self, text):
        self.notes.append(text)
        log(f"  run {self.k}: {text}")

    def leader(self):
        """The leader of a random partition (a random live broker if none is known)."""
        p = self.rng.randrange(PARTITIONS)
        lead = self.c.leader_of(self.topic, p)
        if lead < 1 or lead > self.c.n:
            lead = self.rng.randint(1, self.c.n)
            self.note(f"p{p} has no known leader; picked broker {lead}")
        return p, lead

    # --- faults: each returns a short description and leaves the cluster healed ---

    def f_kill(self):
        p, b = self.leader()
        down = self.rng.uniform(1, 4)
        self.c.kill9(b)
        self.note(f"SIGKILL broker {b} (leader of p{p}); down {down:.1f}s")
        time.sleep(down)
        t0 = time.time()
        self.c.start(b)
        self.note(f"broker {b} answering again {time.time() - t0:.1f}s after its start")
        return f"kill b{b} (leader p{p}) {down:.1f}s"

    def f_stop(self):
        p, b = self.leader()
        pause = self.rng.uniform(2, 7)
        self.c.sigstop(b)
        self.note(f"SIGSTOP broker {b} (leader of p{p}) for {pause:.1f}s")
        time.sleep(pause)
        self.c.sigcont(b)
        return f"stop b{b} (leader p{p}) {pause:.1f}s"

    def f_rolling(self):
        order = list(range(1, self.c.n + 1))
        self.rng.shuffle(order)
        for b in order:
            took = self.c.terminate(b)
            t0 = time.time()
            self.c.start(b)
            self.note(f"rolling: broker {b} stopped (SIGTERM) in {took:.1f}s, answering {time.time() - t0:.1f}s after its start")
            try:
                self.c.wait_for_leaders(self.topic, timeout=self.args.isr_timeout, full_isr=True)
            except RuntimeError as e:
                self.note(f"rolling: full ISR not back after broker {b}: {e}; going on")
        return "rolling " + ",".join(f"b{b}" for b in order)

    def f_isolate(self):
        p, b = self.leader()
        t = self.rng.uniform(3, 8)
        self.c.isolate(b)
        self.note(f"isolate broker {b} (leader of p{p}) for {t:.1f}s")
        time.sleep(t)
        self.c.heal(b)
        return f"isolate b{b} (leader p{p}) {t:.1f}s"

    def f_partition(self):
        p, b = self.leader()
        t = self.rng.uniform(3, 8)
        self.c.partition(b)
        self.note(f"cut broker {b} (leader of p{p}) off from its peers (clients still reach it) for {t:.1f}s")
        time.sleep(t)
        self.c.heal(b)
        return f"partition b{b} (leader p{p}) {t:.1f}s"

    def f_netem(self):
        p, b = self.leader()
        if self.rng.random() < 0.3:
            b = self.rng.randint(1, self.c.n)
        t = self.rng.uniform(4, 8)
        delay, loss = self.rng.choice([50, 100, 200, 300]), self.rng.choice([0, 5, 10, 20, 30])
        what = self.c.netem(b, delay_ms=delay, jitter_ms=delay // 4, loss_pct=loss)
        self.note(f"slow broker {b} for {t:.1f}s: {what}")
        time.sleep(t)
        self.c.heal(b)
        return f"netem b{b} {delay}ms {loss}% {t:.1f}s"

    # --- the run ---

    def execute(self):
        a = self.args
        t0 = time.time()
        self.c.create_topic(self.topic, PARTITIONS, 3, {"min.insync.replicas": "2"})
        self.c.wait_for_leaders(self.topic, timeout=a.isr_timeout, full_isr=True, partitions=PARTITIONS)
        wl = Workload(self.c.bootstrap, self.topic, PARTITIONS, run=f"r{self.k}", producers=a.producers, rate=a.rate)
        wl.start()
        try:
            # Warm up: some acknowledged records on every partition before the fault.
            warm_deadline = time.time() + 30
            time.sleep(self.rng.uniform(1, 2.5))
            while wl.ack_count() < 50 and time.time() < warm_deadline:
                time.sleep(0.1)
            before = wl.ack_count()
            fault_at = time.time()
            desc = getattr(self, f"f_{self.fault}")()
            self.c.heal_all()
            after = self.rng.uniform(1.5, 3.5)
            time.sleep(after)
            stopped = wl.stop_producing()
            if not stopped:
                self.note("producers did not finish within their delivery timeout")
            self.c.wait_for_leaders(self.topic, timeout=a.leader_timeout, partitions=PARTITIONS)
            try:  # best effort: lets the HW catch up everywhere before the read
                self.c.wait_for_leaders(self.topic, timeout=10, full_isr=True)
            except RuntimeError as e:
                self.note(f"ISR not full before the final read: {e}")
            final, hw = read_final(self.c.bootstrap, self.topic, PARTITIONS, timeout=a.leader_timeout)
        finally:
            wl.stop_producing(timeout=5)
            wl.stop_consuming()
        acked, maybe, consumed, sent = wl.history()
        summary = check(acked, maybe, consumed, final, hw, produced=sent, partitions=list(range(PARTITIONS)))
        add_client_failures(summary, wl.fatal[:10], wl.errors[:10], wl.sequence_errors)
        summary["run"] = self.k
        summary["fault"] = desc
        summary["acked_before_fault"] = before
        summary["ack_stall_s"] = round(wl.longest_stall(since=fault_at), 1)
        summary["seconds"] = round(time.time() - t0, 1)
        summary["client_errors"] = dict(wl.error_counts)
        return summary


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--broker", choices=["fjord", "kafka"], required=True)
    ap.add_argument("--fjord-bin", help="the fjord binary (default target/release/fjord)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, help="default: random (printed)")
    ap.add_argument("--net", choices=["loopback", "netns"], default="loopback")
    ap.add_argument("--faults", help=f"comma-separated, from {','.join(PROCESS_FAULTS + NET_FAULTS)}; "
                    "default: the process faults, and with --net netns the network ones too")
    ap.add_argument("--time-budget", type=float, help="start no run after this many seconds (the rest are reported as skipped)")
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200, help="records per second per producer")
    ap.add_argument("--isr-timeout", type=float, default=45, help="seconds to wait for a full ISR (topic creation, rolling restarts)")
    ap.add_argument("--leader-timeout", type=float, default=60, help="seconds to wait for leaders and the final read after the faults")
    ap.add_argument("--keep", action="store_true", help="keep the brokers' folders (after a failed run they are kept anyway: "
                    "with the data for the first failure, the logs only for later ones)")
    ap.add_argument("--json", help="also write the summary (all runs) to this file")
    a = ap.parse_args()
    allowed = PROCESS_FAULTS + (NET_FAULTS if a.net == "netns" else [])
    if a.faults:
        a.faults = [f.strip() for f in a.faults.split(",") if f.strip()]
        unknown = [f for f in a.faults if f not in PROCESS_FAULTS + NET_FAULTS]
        if unknown:
            ap.error(f"unknown fault(s) {unknown}; known: {PROCESS_FAULTS + NET_FAULTS}")
        needs_net = [f for f in a.faults if f not in allowed]
        if needs_net:
            ap.error(f"fault(s) {needs_net} need --net netns")
    else:
        a.faults = allowed
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    return a


def fault_order(rng, faults, runs):
    """Faults for `runs` runs: shuffled rounds, so each kind comes up about as often."""
    out = []
    while len(out) < runs:
        r = list(faults)
        rng.shuffle(r)
        out += r
    return out[:runs]


def main():
    a = parse_args()
    rng = random.Random(a.seed)
    plan = fault_order(rng, a.faults, a.runs)
    log(f"fault test: broker={a.broker} net={a.net} runs={a.runs} seed={a.seed} faults={','.join(a.faults)}"
        + (f" time-budget={a.time_budget:.0f}s" if a.time_budget else ""))
    t_start = time.time()
    results = []
    cluster = None
    kept = []
    try:
        for k, fault in enumerate(plan, 1):
            if a.time_budget and time.time() - t_start > a.time_budget:
                log(f"time budget of {a.time_budget:.0f}s spent: skipping runs {k}..{a.runs}")
                break
            if cluster is None:
                t0 = time.time()
                cluster = Cluster(a.broker, 3, a.net, a.fjord_bin, keep=a.keep)
                try:
                    cluster.start_all()
                except Exception as e:  # noqa: BLE001
                    log(f"the cluster did not start: {e}")
                    print(cluster.log_tails(60), flush=True)
                    cluster.close(keep=True)
                    kept.append(cluster.dir)
                    results.append({"run": k, "fault": fault, "ok": False, "error": f"cluster start: {e}"})
                    break
                log(f"{a.broker} cluster up in {time.time() - t0:.1f}s: {cluster.bootstrap} (folders in {cluster.dir})")
            log(f"run {k}/{a.runs}: {fault}")
            run = Run(k, cluster, rng, fault, a)
            try:
                s = run.execute()
            except Exception as e:  # noqa: BLE001
                s = {"run": k, "fault": fault, "ok": False, "error": f"{type(e).__name__}: {e}",
                     "trace": traceback.format_exc(limit=4)}
            s["fault_kind"] = fault
            results.append(s)
            if s["ok"]:
                log(f"run {k}/{a.runs} ok: {s['fault']}: acked={s['acked']} maybe={s['maybe']} "
                    f"consumed={s['consumed']} final={sum(s['final'].values())} longest ack stall {s['ack_stall_s']}s; {s['seconds']}s")
            else:
                log(f"run {k}/{a.runs} FAILED ({fault}): " + (s.get("error") or f"{s['violation_count']} violations {s['violation_kinds']}"))
                for v in s.get("violations", [])[:15]:
                    print(f"    {v}", flush=True)
                if s.get("trace"):
                    print(s["trace"], flush=True)
                for n in run.notes:
                    print(f"    note: {n}", flush=True)
                try:
                    print("    metadata now: " + json.dumps(cluster.describe(run.topic, timeout=5)), flush=True)
                except Exception as e:  # noqa: BLE001
                    print(f"    metadata now: unavailable ({e})", flush=True)
                print(cluster.log_tails(40), flush=True)
                # The data too for the first failure (fjord's can be GBs), the logs for later ones.
                cluster.close(keep=True, keep_data=a.keep or not kept)
                kept.append(cluster.dir)
                cluster = None
            print("RESULT " + json.dumps({k2: v for k2, v in s.items() if k2 != "trace"}, sort_keys=True), flush=True)
    finally:
        if cluster is not None:
            cluster.close()
    failed = [s for s in results if not s.get("ok")]
    by_fault = Counter(s["fault_kind"] for s in results)
    failed_by_fault = Counter(s["fault_kind"] for s in failed)
    summary = {
        "broker": a.broker, "net": a.net, "seed": a.seed, "runs_planned": a.runs, "runs": len(results),
        "passed": len(results) - len(failed), "failed": len(failed), "skipped": a.runs - len(results),
        "faults": dict(by_fault), "failed_faults": dict(failed_by_fault),
        "acked": sum(s.get("acked", 0) for s in results),
        "seconds": round(time.time() - t_start, 1), "kept_folders": kept,
    }
    log(f"summary: {summary['runs']} runs ({summary['skipped']} skipped), {summary['passed']} passed, "
        f"{summary['failed']} failed; faults {dict(by_fault)}; {summary['acked']} records acknowledged; "
        f"{summary['seconds']}s; seed {a.seed}")
    print("SUMMARY " + json.dumps(summary, sort_keys=True), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "runs": results}, f, indent=1, default=str)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
