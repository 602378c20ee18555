//! `fjord bench` against a real broker (fjord, or Kafka with
//! FJORD_TEST_BROKER=kafka): tiny, bounded runs, so the load generator is
//! exercised on every CI run. Nothing here asserts a speed.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{Broker, kafka_tool, run, run_ok};

fn bench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.arg("bench");
    cmd
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    assert!(bytes.len() > 10_000, "{} is suspiciously small ({} bytes)", path.display(), bytes.len());
}

/// Sum of the end offsets of `topic`'s partitions, by Kafka's GetOffsetShell.
fn end_offsets(b: &Broker, topic: &str) -> i64 {
    let out = run_ok(
        kafka_tool("kafka-get-offsets").args(["--bootstrap-server", &b.bootstrap(), "--topic", topic]),
        None,
        Duration::from_secs(60),
    );
    out.lines().filter_map(|l| l.rsplit(':').next()?.trim().parse::<i64>().ok()).sum()
}

#[test]
fn a_record_bounded_run_reports_every_record_and_the_log_holds_them() {
    let b = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let plots = dir.path().join("plots");
    let out = run_ok(
        bench()
            .args([
                "--bootstrap-server",
                &b.bootstrap(),
                "--partitions",
                "4",
                "--record-size",
                "512",
                "--records",
                "20000",
                "--warmup",
                "0s",
                "--interval",
                "500ms",
                "--acks",
                "all",
                "--compression",
                "lz4",
                "--keep-topics",
                "--output",
            ])
            .arg(&json)
            .arg("--plots")
            .arg(&plots),
        None,
        Duration::from_secs(180),
    );
    assert!(out.contains("publish latency ms"), "no summary on stdout:\n{out}");

    let r = read_json(&json);
    let s = &r["summary"];
    // With no warm-up every record is in the measured window: each one
    // acknowledged exactly once, and each one received exactly once.
    assert_eq!(s["publish"]["records"], 20000, "{s}");
    assert_eq!(s["publish"]["bytes"], 20000 * 512, "{s}");
    assert_eq!(s["publish_latency_ms"]["count"], 20000, "{s}");
    assert_eq!(s["end_to_end_latency_ms"]["count"], 20000, "{s}");
    assert_eq!(s["publish_errors"], 0);
    let p = &s["publish_latency_ms"];
    let (p50, p99, max) = (p["p50"].as_f64().unwrap(), p["p99"].as_f64().unwrap(), p["max"].as_f64().unwrap());
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "percentiles out of order: {p}");
    assert!(s["publish"]["mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(!r["intervals"].as_array().unwrap().is_empty());
    assert_png(&plots.join("throughput.png"));
    assert_png(&plots.join("latency.png"));

    // The broker agrees: the topic the bench kept holds exactly those records.
    let topic = r["workload"]["topics"][0].as_str().unwrap().to_string();
    assert_eq!(r["workload"]["partitions_per_topic"], 4);
    assert_eq!(end_offsets(&b, &topic), 20000);

    // And a consume-only run reads them back from the earliest offset.
    let json2 = dir.path().join("consume.json");
    run_ok(
        bench()
            .args(["--bootstrap-server", &b.bootstrap(), "--topic", &topic, "--producers", "0", "--consumers", "2"])
            .args(["--records", "20000", "--output"])
            .arg(&json2),
        None,
        Duration::from_secs(120),
    );
    let c = &read_json(&json2)["summary"]["consume"];
    assert_eq!(c["records"], 20000, "{c}");
    assert_eq!(c["bytes"], 20000 * 512, "{c}");
}

#[test]
fn a_timed_run_with_a_rate_warms_up_then_measures_and_cleans_up() {
    let b = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    run_ok(
        bench()
            .args(["--bootstrap-server", &b.bootstrap(), "--topics", "2", "--partitions", "3"])
            .args(["--producers", "2", "--consumers", "2", "--rate", "2000", "--acks", "1"])
            .args(["--warmup", "1s", "--duration", "3s", "--output"])
            .arg(&json),
        None,
        Duration::from_secs(120),
    );
    let r = read_json(&json);
    let rows = r["intervals"].as_array().unwrap();
    assert_eq!(rows[0]["warmup"], true, "the first interval is warm-up");
    assert!(rows.iter().any(|row| row["warmup"] == false));
    let s = &r["summary"];
    let rate = s["publish"]["records_per_s"].as_f64().unwrap();
    // A ceiling only: a slow machine may fall short of the rate, but the
    // limiter must never let the producers run well past it.
    assert!(rate > 0.0 && rate < 2000.0 * 1.3, "publish rate {rate} with --rate 2000");
    assert!(s["end_to_end_latency_ms"]["count"].as_u64().unwrap() > 0);
    let duration = s["duration_s"].as_f64().unwrap();
    assert!((3.0..10.0).contains(&duration), "measured {duration} s for --duration 3s");

    // Without --keep-topics the bench deletes what it created.
    let topics = r["workload"]["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 2);
    let listed = run_ok(kafka_tool("kafka-topics").args(["--bootstrap-server", &b.bootstrap(), "--list"]), None, Duration::from_secs(60));
    for t in topics {
        assert!(!listed.lines().any(|l| l.trim() == t.as_str().unwrap()), "{t} left behind:\n{listed}");
    }
}

#[test]
fn bad_arguments_and_an_unreachable_broker_fail_clearly() {
    let out = run(bench().args(["--acks", "2"]), None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", out.text());
    assert!(out.stderr.contains("acks must be all, -1, 1 or 0"), "{}", out.text());

    let out = run(bench().args(["--duration", "1s", "--records", "5"]), None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", out.text());

    let out = run(bench().args(["--producers", "0"]), None, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stderr.contains("--topic"), "{}", out.text());

    // Nothing listens on a port we just freed.
    let port = support::free_port();
    let out = run(bench().args(["--bootstrap-server", &format!("127.0.0.1:{port}"), "--records", "1"]), None, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", out.text());
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "the error names the broker:\n{}", out.text());
}

#[test]
fn a_producer_only_run_of_one_record_is_the_startup_probe() {
    // benches/compare times a broker's start to its first acknowledged
    // produce with exactly this run.
    let b = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("one.json");
    run_ok(
        bench()
            .args(["--bootstrap-server", &b.bootstrap(), "--consumers", "0", "--records", "1", "--warmup", "0s"])
            .arg("--output")
            .arg(&json),
        None,
        Duration::from_secs(60),
    );
    let s = &read_json(&json)["summary"];
    assert_eq!(s["publish"]["records"], 1, "{s}");
    assert_eq!(s["publish_latency_ms"]["count"], 1, "{s}");
    assert_eq!(s["end_to_end_latency_ms"]["count"], 0, "no consumers, no end-to-end samples: {s}");
}
