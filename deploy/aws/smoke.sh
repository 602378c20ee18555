#!/usr/bin/env bash
# Runs what the CDK app would put on the three instances, on this machine,
# with the real fjord binary (deploy/aws/README.md, "Checks"):
# - each broker's server.properties, taken from the synthesized template and
#   expanded by the shell as the boot script does (broker.rack = an AZ id),
#   with its listeners on the broker's fixed private IP (10.40.3.10, ...);
# - haproxy in the NLB's place: kafka.fjord.internal:8443/8444/8445 to port
#   9094 of brokers 1/2/3;
# - the generated fjord-scram-user script, which makes the SCRAM-SHA-512
#   user with Kafka's kafka-configs over INTERNAL (the `aws` CLI is a stub
#   that prints the secret; paths under /etc and /opt point into a temp dir);
# - then Kafka's own tools through the stand-in NLB, over SASL_PLAINTEXT
#   with SCRAM-SHA-512: create a topic with RF 3, produce, consume; a wrong
#   password is refused; GET /ready answers 200 on each broker.
# It runs in its own network and mount namespaces (root): the fixed IPs go
# on that namespace's loopback and /etc/hosts is replaced only inside it.
# Needs a fjord binary (FJORD_BIN, default target/release/fjord), haproxy,
# java and Kafka's jars (scripts/fetch-kafka.sh); skips, saying so, without.
#   bash deploy/aws/smoke.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fjord=${FJORD_BIN:-$root/target/release/fjord}

skip() {
  echo "deploy/aws smoke: skipped: $*"
  exit 0
}

if [ -z "${FJORD_AWS_SMOKE_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || skip "needs root for its network and mount namespaces"
  [ -x "$fjord" ] || skip "no fjord binary at $fjord (cargo build --release, or set FJORD_BIN)"
  command -v haproxy >/dev/null || skip "haproxy is not installed"
  command -v java >/dev/null || skip "java is not installed"
  [ -f "$root/.cache/kafka-libs/.version" ] || skip "Kafka's jars are missing (bash scripts/fetch-kafka.sh)"
  [ -d "$here/node_modules" ] || skip "node_modules is missing (bash deploy/aws/check.sh first)"
  (cd "$here" && npx --no-install tsc)
  exec unshare --net --mount --fork env FJORD_AWS_SMOKE_INNER=1 FJORD_BIN="$fjord" bash "$0" "$@"
fi

mount --make-rprivate /
work=$(mktemp -d /tmp/fjord-aws-smoke.XXXXXX)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    for log in "$work"/*.log; do echo "--- $log (last lines)"; tail -n 20 "$log"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
say() { echo "deploy/aws smoke: $*"; }
tool() { KAFKA_TOOL_HEAP=256m bash "$root/tests/interop/kafka-tool.sh" "$@"; }

node "$here/build/tools/extract-boot.js" "$work/gen" fjordBinaryUrl=https://example.invalid/fjord
ip link set lo up
declare -A ip
for n in 1 2 3; do
  # shellcheck disable=SC1090 # generated above
  ip[$n]=$(. "$work/gen/broker-$n/boot.env" && echo "$BROKER_IP")
  ip addr add "${ip[$n]}/32" dev lo
done
cp /etc/hosts "$work/hosts"
echo "127.0.0.1 kafka.fjord.internal" >>"$work/hosts"
mount --bind "$work/hosts" /etc/hosts

# The brokers. The file is expanded as the boot script's unquoted heredoc
# expands it; only what one machine cannot share is changed: the data
# folder, and the metrics port (0.0.0.0:11001 on every instance).
for n in 1 2 3; do
  props=$work/broker-$n.properties
  (
    export AZ_ID=use1-az$n
    eval "cat <<FJORD_EOF
$(cat "$work/gen/broker-$n/server.properties")
FJORD_EOF"
  ) | sed -e "s|^log.dirs=.*|log.dirs=$work/data-$n|" -e "s|^metrics.listener=0.0.0.0:|metrics.listener=${ip[$n]}:|" >"$props"
  grep -qx "broker.rack=use1-az$n" "$props"
  "$FJORD_BIN" start --config "$props" >"$work/broker-$n.log" 2>&1 &
  pids+=($!)
done

cat >"$work/haproxy.cfg" <<EOF
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
EOF
for n in 1 2 3; do
  port=$(sed -n 's|^advertised.listeners=.*EXTERNAL://kafka.fjord.internal:\([0-9]*\)$|\1|p' "$work/broker-$n.properties")
  printf 'listen broker%s\n  bind 127.0.0.1:%s\n  server b%s %s:9094\n' "$n" "$port" "$n" "${ip[$n]}" >>"$work/haproxy.cfg"
done
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

# The SCRAM user, by the generated script.
password=Sm0keTestPassw0rd4fjord
mkdir -p "$work/bin" "$work/opt-kafka/bin"
cat >"$work/bin/aws" <<EOF
#!/bin/bash
# Stands in for: aws secretsmanager get-secret-value --secret-id ARN --query SecretString --output text
[ "\$1 \$2" = "secretsmanager get-secret-value" ] || { echo "aws stub: unexpected \$*" >&2; exit 1; }
echo '{"username":"fjord-client","password":"$password"}'
EOF
cat >"$work/opt-kafka/bin/kafka-configs.sh" <<EOF
#!/bin/bash
exec bash "$root/tests/interop/kafka-tool.sh" kafka-configs "\$@"
EOF
chmod +x "$work/bin/aws" "$work/opt-kafka/bin/kafka-configs.sh"
gen=$work/gen/broker-1
sed -e "s|/etc/fjord/boot.env|$gen/boot.env|" -e "s|/usr/local/lib/fjord/lib.sh|$gen/lib.sh|" -e "s|/opt/kafka/|$work/opt-kafka/|g" \
  "$gen/fjord-scram-user" >"$work/fjord-scram-user"
say "brokers started; running fjord-scram-user (it waits for the quorum)"
PATH=$work/bin:$PATH timeout 300 bash "$work/fjord-scram-user" >"$work/scram.log" 2>&1
grep -q "SCRAM-SHA-512 credentials of fjord-client are set" "$work/scram.log"
say "SCRAM user made"

client() {
  cat <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="fjord-client" password="$1";
EOF
}
client "$password" >"$work/client.properties"
client wrong-password >"$work/wrong.properties"
bootstrap=kafka.fjord.internal:8443

tool kafka-topics --bootstrap-server "$bootstrap" --command-config "$work/client.properties" \
  --create --topic aws-smoke --partitions 3 --replication-factor 3 >"$work/topics.log" 2>&1
described=$(tool kafka-topics --bootstrap-server "$bootstrap" --command-config "$work/client.properties" --describe --topic aws-smoke 2>/dev/null)
echo "$described" | grep -q "PartitionCount: 3" || { echo "$described" >&2; exit 1; }
[ "$(echo "$described" | grep -c 'Replicas: [123],[123],[123]')" = 3 ] || { echo "$described" >&2; exit 1; }
say "topic with RF 3 created through the stand-in NLB"

printf 'one\ntwo\nthree\n' | tool kafka-console-producer --bootstrap-server "$bootstrap" \
  --command-config "$work/client.properties" --topic aws-smoke --command-property acks=all >"$work/producer.log" 2>&1
got=$(tool kafka-console-consumer --bootstrap-server "$bootstrap" --command-config "$work/client.properties" \
  --topic aws-smoke --from-beginning --max-messages 3 --timeout-ms 60000 2>"$work/consumer.log" |
  grep -x 'one\|two\|three' | sort | tr '\n' ' ')
[ "$got" = "one three two " ] || { echo "consumed: $got" >&2; exit 1; }
say "produced and consumed 3 records through kafka.fjord.internal:8443-8445"

if tool kafka-topics --bootstrap-server "$bootstrap" --command-config "$work/wrong.properties" --list >"$work/wrong.log" 2>&1; then
  echo "a wrong password was let in" >&2
  exit 1
fi
grep -q "Authentication failed" "$work/wrong.log"
say "a wrong password is refused"

# As the NLB's health check: a few tries, for a broker still settling.
for n in 1 2 3; do
  for try in $(seq 1 15); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://${ip[$n]}:11001/ready" || true)
    [ "$code" = 200 ] && break
    if [ "$try" = 15 ]; then
      echo "GET /ready on broker $n: $code (000: nothing listens on 11001; does $FJORD_BIN know metrics.listener?)" >&2
      exit 1
    fi
    say "GET /ready on broker $n: $code, again in 2 s"
    sleep 2
  done
done
say "GET /ready is 200 on all three (the NLB's health check)"
say "passed"
