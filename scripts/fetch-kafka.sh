#!/usr/bin/env bash
# Puts Apache Kafka's jars (version in tests/kafka-libs/pom.xml) in
# .cache/kafka-libs, for tests that run Kafka's own tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/kafka-libs
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/kafka-libs/pom.xml)
if [ -f "$out/.version" ] && [ "$(cat "$out/.version")" = "$version" ]; then
  exit 0
fi
if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
  apt-get update -qq && apt-get install -y -qq maven openjdk-17-jdk-headless
fi
rm -rf "$out"
mvn -B -q -Dmaven.repo.local="$PWD/.cache/m2" -f tests/kafka-libs/pom.xml \
  dependency:copy-dependencies -DoutputDirectory="$PWD/$out" -DincludeScope=runtime
echo "$version" > "$out/.version"
echo "kafka $version jars in $out ($(ls "$out" | wc -l) files)"
