//! Apache Kafka's own command-line tools (Kafka 4.4's jars, through
//! `tests/interop/kafka-tool.sh`) against the broker: kafka-topics,
//! kafka-configs, kafka-producer-perf-test, kafka-get-offsets and the console
//! producer and consumer (by partition and offset; no consumer group).
//! `FJORD_TEST_BROKER=kafka` runs the same against Apache Kafka.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::{Broker, Ran, kafka_tool, run, run_ok};

/// Each tool is a JVM start; two tests run at once on two cores.
const T: Duration = Duration::from_secs(120);

fn tool(b: &Broker, name: &str, args: &[&str]) -> Ran {
    run(kafka_tool(name).args(["--bootstrap-server", &b.bootstrap()]).args(args), None, T)
}

fn tool_ok(b: &Broker, name: &str, args: &[&str]) -> String {
    run_ok(kafka_tool(name).args(["--bootstrap-server", &b.bootstrap()]).args(args), None, T)
}

/// `--describe` output of kafka-topics: the partition count, and each
/// partition's fields (`Leader`, `Replicas`, `Isr`, ...) by partition.
fn describe(b: &Broker, topic: &str) -> (u32, BTreeMap<u32, BTreeMap<String, String>>) {
    let out = tool_ok(b, "kafka-topics", &["--describe", "--topic", topic]);
    let count = out
        .split_whitespace()
        .skip_while(|w| *w != "PartitionCount:")
        .nth(1)
        .unwrap_or_else(|| panic!("no PartitionCount in:\n{out}"))
        .parse()
        .unwrap();
    let mut parts = BTreeMap::new();
    for line in out.lines().filter(|l| l.contains("Partition: ")) {
        let fields: BTreeMap<String, String> = line
            .split('\t')
            .filter_map(|f| f.split_once(": ").or_else(|| f.strip_suffix(':').map(|k| (k, ""))))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        parts.insert(fields["Partition"].parse().unwrap(), fields);
    }
    (count, parts)
}

/// kafka-get-offsets' `topic:partition:offset` lines for `topic`, by partition.
fn get_offsets(b: &Broker, topic: &str, time: &str) -> BTreeMap<u32, i64> {
    let out = tool_ok(b, "kafka-get-offsets", &["--topic", topic, "--time", time]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.rsplitn(3, ':').collect();
            assert_eq!((f.len(), f.get(2).copied()), (3, Some(topic)), "unexpected kafka-get-offsets line {l:?} in:\n{out}");
            (f[1].parse().unwrap(), f[0].parse().unwrap())
        })
        .collect()
}

fn list(b: &Broker) -> Vec<String> {
    tool_ok(b, "kafka-topics", &["--list"]).lines().map(str::to_string).collect()
}

#[test]
fn kafka_topics_create_describe_alter_list_delete() {
    let b = Broker::start();
    let out = tool_ok(&b, "kafka-topics", &["--create", "--topic", "tools-a", "--partitions", "3", "--replication-factor", "1"]);
    assert!(out.contains("Created topic tools-a."), "{out}");
    tool_ok(&b, "kafka-topics", &["--create", "--topic", "tools-b", "--partitions", "1"]);

    let (count, parts) = describe(&b, "tools-a");
    assert_eq!(count, 3);
    assert_eq!(parts.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    for (p, f) in &parts {
        let leader: i32 = f["Leader"].parse().unwrap_or_else(|_| panic!("partition {p}: leader {:?}", f["Leader"]));
        assert!(leader >= 0, "partition {p} has no leader: {f:?}");
        assert!(f["Isr"].split(',').any(|r| r == f["Leader"]), "partition {p}: the leader is not in the ISR: {f:?}");
        assert!(f["Replicas"].split(',').any(|r| r == f["Leader"]), "partition {p}: the leader is not a replica: {f:?}");
    }

    // By topic id too (Metadata v12+ by id, with "" as the name).
    let by_name = tool_ok(&b, "kafka-topics", &["--describe", "--topic", "tools-a"]);
    let id = by_name.split_whitespace().skip_while(|w| *w != "TopicId:").nth(1).expect("a TopicId").to_string();
    let by_id = tool_ok(&b, "kafka-topics", &["--describe", "--topic-id", &id]);
    assert!(by_id.contains("Topic: tools-a") && by_id.contains(&id), "{by_id}");
    let unknown = tool(&b, "kafka-topics", &["--describe", "--topic-id", "AAAAAAAAAAAAAAAAAAAAAQ"]);
    assert!(!unknown.status.success() && unknown.text().contains("does not exist"), "{}", unknown.text());

    // Creating it again fails with TopicExistsException.
    let again = tool(&b, "kafka-topics", &["--create", "--topic", "tools-a", "--partitions", "3"]);
    assert!(!again.status.success() && again.stderr.contains("TopicExistsException"), "{}", again.text());

    tool_ok(&b, "kafka-topics", &["--alter", "--topic", "tools-a", "--partitions", "5"]);
    let (count, parts) = describe(&b, "tools-a");
    assert_eq!((count, parts.len()), (5, 5));
    assert!(parts.values().all(|f| f["Leader"].parse::<i32>().is_ok_and(|l| l >= 0)), "{parts:?}");

    // Fewer partitions is refused with INVALID_PARTITIONS, and nothing changes.
    let shrink = tool(&b, "kafka-topics", &["--alter", "--topic", "tools-a", "--partitions", "2"]);
    assert!(!shrink.status.success(), "shrinking to 2 partitions succeeded:\n{}", shrink.text());
    assert!(shrink.stderr.contains("InvalidPartitionsException"), "not an InvalidPartitions error:\n{}", shrink.text());
    assert_eq!(describe(&b, "tools-a").0, 5);

    let topics = list(&b);
    assert!(topics.contains(&"tools-a".to_string()) && topics.contains(&"tools-b".to_string()), "{topics:?}");

    tool_ok(&b, "kafka-topics", &["--delete", "--topic", "tools-a"]);
    // Deletion reaches the broker's metadata soon after the controller takes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topics = list(&b);
        if !topics.contains(&"tools-a".to_string()) {
            assert!(topics.contains(&"tools-b".to_string()), "deleting tools-a took tools-b too: {topics:?}");
            break;
        }
        assert!(Instant::now() < deadline, "tools-a still listed 30 s after its deletion: {topics:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let gone = tool(&b, "kafka-topics", &["--describe", "--topic", "tools-a"]);
    assert!(!gone.status.success() && gone.stdout.contains("does not exist"), "{}", gone.text());
}

#[test]
fn kafka_configs_topic_override_add_describe_delete() {
    let b = Broker::start();
    tool_ok(&b, "kafka-topics", &["--create", "--topic", "cfg", "--partitions", "1"]);
    let configs = ["--entity-type", "topics", "--entity-name", "cfg"];
    let describe = |all: bool| {
        let mut args = configs.to_vec();
        args.push("--describe");
        if all {
            args.push("--all");
        }
        tool_ok(&b, "kafka-configs", &args)
    };

    let before = describe(false);
    assert!(before.contains("Dynamic configs for topic cfg are:"), "{before}");
    assert!(!before.contains("retention.ms="), "a retention.ms override before any was set:\n{before}");

    let out = tool_ok(&b, "kafka-configs", &[&configs[..], &["--alter", "--add-config", "retention.ms=1234"]].concat());
    assert!(out.contains("Completed updating config for topic cfg."), "{out}");
    let set = describe(false);
    assert!(set.lines().any(|l| l.trim_start().starts_with("retention.ms=1234 ")), "retention.ms=1234 not described:\n{set}");
    assert!(describe(true).lines().any(|l| l.trim_start().starts_with("retention.ms=1234 ")));

    tool_ok(&b, "kafka-configs", &[&configs[..], &["--alter", "--delete-config", "retention.ms"]].concat());
    let after = describe(false);
    assert!(!after.contains("retention.ms="), "retention.ms still overridden after --delete-config:\n{after}");
    // Without the override the topic has the broker's default, 7 days.
    let all = describe(true);
    assert!(all.lines().any(|l| l.trim_start().starts_with("retention.ms=604800000 ")), "default retention.ms not described:\n{all}");
}

#[test]
fn producer_perf_test_then_get_offsets() {
    let b = Broker::start();
    tool_ok(&b, "kafka-topics", &["--create", "--topic", "perf", "--partitions", "3"]);
    let bootstrap = format!("bootstrap.servers={}", b.bootstrap());
    let out = run_ok(
        kafka_tool("kafka-producer-perf-test").args(["--topic", "perf", "--num-records", "200000", "--record-size", "100"]).args([
            "--throughput",
            "-1",
            "--command-property",
            "acks=all",
            &bootstrap,
        ]),
        None,
        Duration::from_secs(240),
    );
    assert!(out.lines().any(|l| l.starts_with("200000 records sent,")), "perf test did not report 200000 records sent:\n{out}");

    for time in ["-1", "latest"] {
        let ends = get_offsets(&b, "perf", time);
        assert_eq!(ends.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2], "--time {time}");
        assert!(ends.values().all(|&o| o > 0), "a partition got nothing: {ends:?}");
        assert_eq!(ends.values().sum::<i64>(), 200_000, "--time {time}: end offsets {ends:?}");
    }
    let starts = get_offsets(&b, "perf", "-2");
    assert_eq!(starts, (0..3).map(|p| (p, 0)).collect::<BTreeMap<_, _>>(), "earliest offsets");
}

#[test]
fn console_producer_and_consumer_exact_contents() {
    let b = Broker::start();
    tool_ok(&b, "kafka-topics", &["--create", "--topic", "console", "--partitions", "1"]);
    let lines = [
        ("k1", "hello"),
        ("k2", "world"),
        ("k3", "a value with spaces: and a colon"),
        ("k4", ""),
        ("ключ", "héllo wörld ✓"),
        ("k6", "last"),
    ];
    let input: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    run_ok(
        kafka_tool("kafka-console-producer").args(["--bootstrap-server", &b.bootstrap(), "--topic", "console"]).args([
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
        ]),
        Some(input.as_bytes()),
        T,
    );

    let consume = |from: &str, max: usize| {
        tool_ok(
            &b,
            "kafka-console-consumer",
            &[
                "--topic",
                "console",
                "--partition",
                "0",
                "--offset",
                from,
                "--max-messages",
                &max.to_string(),
                "--timeout-ms",
                "60000",
                "--formatter-property",
                "print.key=true",
                "--formatter-property",
                "print.offset=true",
            ],
        )
    };
    let want: String = lines.iter().enumerate().map(|(i, (k, v))| format!("Offset:{i}\t{k}\t{v}\n")).collect();
    assert_eq!(consume("earliest", lines.len()), want);
    let from3: String = want.lines().skip(3).take(2).map(|l| format!("{l}\n")).collect();
    assert_eq!(consume("3", 2), from3, "reading from offset 3");

    assert_eq!(get_offsets(&b, "console", "-1"), BTreeMap::from([(0, lines.len() as i64)]));
    assert_eq!(get_offsets(&b, "console", "-2"), BTreeMap::from([(0, 0)]));
}

#[test]
fn auto_created_topic_takes_num_partitions() {
    let b = Broker::start_with(&[("num.partitions", "3"), ("auto.create.topics.enable", "true")]);
    run_ok(
        kafka_tool("kafka-console-producer").args(["--bootstrap-server", &b.bootstrap(), "--topic", "auto-created"]),
        Some(b"one\ntwo\nthree\n"),
        T,
    );
    let (count, parts) = describe(&b, "auto-created");
    assert_eq!((count, parts.len()), (3, 3), "an auto-created topic should get num.partitions=3");
    assert_eq!(get_offsets(&b, "auto-created", "-1").values().sum::<i64>(), 3);
}
