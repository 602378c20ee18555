#!/usr/bin/env bash
# Runs one of Apache Kafka's command-line tools by its script name, from the
# Kafka jars that scripts/fetch-kafka.sh puts in .cache/kafka-libs (and the
# logging binding scripts/install-test-deps.sh puts in .cache/interop-libs):
#   bash tests/interop/kafka-tool.sh kafka-topics --bootstrap-server 127.0.0.1:9092 --list
# Tool logs go to stderr at WARN (KAFKA_TOOL_LOG_LEVEL changes it; the server
# logs at INFO). KAFKA_TOOL_HEAP sets -Xmx (default 512m).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
libs=${FJORD_KAFKA_LIBS:-$root/.cache/kafka-libs}

if [ $# -lt 1 ]; then
  echo "usage: $0 <kafka-tool-name> [args...]" >&2
  exit 2
fi
tool=$1
shift
level=${KAFKA_TOOL_LOG_LEVEL:-warn}
case "$tool" in
  kafka-topics) class=org.apache.kafka.tools.TopicCommand ;;
  kafka-configs) class=org.apache.kafka.tools.ConfigCommand ;;
  kafka-console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-producer-perf-test) class=org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test) class=org.apache.kafka.tools.ConsumerPerformance ;;
  kafka-dump-log) class=org.apache.kafka.tools.DumpLogSegments ;;
  kafka-consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-leader-election) class=org.apache.kafka.tools.LeaderElectionCommand ;;
  kafka-reassign-partitions) class=org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
  kafka-metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
  kafka-acls) class=org.apache.kafka.tools.AclCommand ;;
  kafka-storage) class=kafka.tools.StorageTool ;;
  kafka-server-start) class=kafka.Kafka level=${KAFKA_TOOL_LOG_LEVEL:-info} ;;
  *)
    echo "kafka-tool.sh: unknown tool $tool" >&2
    exit 2
    ;;
esac

if ! command -v java >/dev/null || [ ! -f "$libs/.version" ]; then
  echo "kafka-tool.sh: java or Kafka's jars ($libs) are missing: run bash scripts/fetch-kafka.sh and bash scripts/install-test-deps.sh" >&2
  exit 127
fi
exec java -Xmx"${KAFKA_TOOL_HEAP:-512m}" -Dorg.slf4j.simpleLogger.defaultLogLevel="$level" \
  -cp "$libs/*:$root/.cache/interop-libs/*" "$class" "$@"
