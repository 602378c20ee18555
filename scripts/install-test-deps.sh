#!/usr/bin/env bash
# Installs the Kafka clients the interop tests drive (tests/interop/README.md):
# kcat (librdkafka) from Debian, kafka-python and confluent-kafka in a venv at
# .cache/venv, and the franz-go test program at .cache/bin/franz-interop. The
# same venv holds moto, whose S3 server tiered/tests/s3.rs starts on 127.0.0.1.
# The exactly-once tests' Java programs (tests/eos) are compiled against Kafka's
# client and Kafka Streams from Maven Central into .cache/eos-classes.
# Kafka's own jars and Java come from scripts/fetch-kafka.sh. Idempotent, and
# quick when everything is already there. Usage: bash scripts/install-test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Pinned client versions (bump on purpose, then rerun this script).
kafka_python_version=3.0.12
confluent_kafka_version=2.16.1
moto_version=5.2.5
# The oldest Go that builds tests/interop/franz (its go.mod's go line), and the
# toolchain fetched from the Go module proxy when the machine's Go is older.
go_min=1.26.0
go_toolchain=go1.26.8

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# --- librdkafka's command-line client ---------------------------------------
command -v kcat >/dev/null || apt_install kcat

# --- network namespaces, links and qdiscs for the fault tests (tests/cluster) ---
# ip and tc (iproute2); nft for random packet loss where the kernel has no netem
# qdisc; setpriv (util-linux) ties each broker's life to the driver's.
command -v ip >/dev/null && command -v tc >/dev/null || apt_install iproute2
command -v nft >/dev/null || apt_install nftables
command -v setpriv >/dev/null || apt_install util-linux
command -v openssl >/dev/null || apt_install openssl # certificates for broker/tests/tls.rs
command -v haproxy >/dev/null || apt_install haproxy # the L4 load balancer of broker/tests/privatelink.rs
# promtool and a Prometheus server, which check and scrape /metrics (broker/tests/metrics.rs).
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install --no-install-recommends prometheus

# --- Python clients and moto's S3 server in a venv ---------------------------
venv=.cache/venv
stamp="$venv/.installed"
want="kafka-python==$kafka_python_version confluent-kafka==$confluent_kafka_version moto[server]==$moto_version"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3 python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  # Split without globbing: moto[server] is a glob pattern to an unquoted $want.
  read -ra pkgs <<<"$want"
  PIP_CACHE_DIR="$root/.cache/pip" "$venv/bin/pip" install -q --disable-pip-version-check "${pkgs[@]}"
  "$venv/bin/python" -c 'import kafka, confluent_kafka, moto.server'
  echo "$want" > "$stamp"
  echo "python clients in $venv: $want"
fi

# --- a logging binding for Kafka's tools and broker ---------------------------
libs=.cache/interop-libs
pom=tests/interop/java/pom.xml
pom_sum=$(sha256sum "$pom" | cut -d' ' -f1)
if [ "$(cat "$libs/.pom-sha256" 2>/dev/null)" != "$pom_sum" ]; then
  if ! command -v mvn >/dev/null; then
    apt_install maven openjdk-17-jdk-headless
  fi
  rm -rf "$libs"
  mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$root/.cache/m2" -f "$pom" \
    dependency:copy-dependencies -DoutputDirectory="$root/$libs" -DincludeScope=runtime
  echo "$pom_sum" > "$libs/.pom-sha256"
  echo "interop jars in $libs: $(ls "$libs" | tr '\n' ' ')"
fi

# --- the exactly-once test programs (tests/eos) --------------------------------
# Kafka's Java client and Kafka Streams (with RocksDB) from Maven Central in
# .cache/eos-libs, and the programs compiled against them in .cache/eos-classes
# (recompiled when a source or the pom changes).
eos_libs=.cache/eos-libs
eos_pom=tests/eos/pom.xml
eos_pom_sum=$(sha256sum "$eos_pom" | cut -d' ' -f1)
if [ "$(cat "$eos_libs/.pom-sha256" 2>/dev/null)" != "$eos_pom_sum" ]; then
  if ! command -v mvn >/dev/null; then
    apt_install maven openjdk-17-jdk-headless
  fi
  rm -rf "$eos_libs"
  mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$root/.cache/m2" -f "$eos_pom" \
    dependency:copy-dependencies -DoutputDirectory="$root/$eos_libs" -DincludeScope=runtime
  echo "$eos_pom_sum" > "$eos_libs/.pom-sha256"
  echo "exactly-once test jars in $eos_libs: $(ls "$eos_libs" | tr '\n' ' ')"
fi
eos_classes=.cache/eos-classes
eos_sum=$(sha256sum "$eos_pom" tests/eos/src/*.java | sha256sum | cut -d' ' -f1)
if [ "$(cat "$eos_classes/.sources-sha256" 2>/dev/null)" != "$eos_sum" ]; then
  if ! command -v javac >/dev/null; then
    apt_install openjdk-17-jdk-headless
  fi
  rm -rf "$eos_classes"
  mkdir -p "$eos_classes"
  javac -nowarn -d "$eos_classes" -cp "$eos_libs/*" tests/eos/src/*.java
  echo "$eos_sum" > "$eos_classes/.sources-sha256"
  echo "exactly-once test programs compiled into $eos_classes"
else
  # Same sources, newer files (a checkout): the tests compare times.
  touch "$eos_classes/.sources-sha256"
fi

# --- franz-go test program ----------------------------------------------------
# True when Go version $1 (like go1.26.8 or 1.26.0) is at least $2.
go_at_least() {
  local have=${1#go} need=${2#go}
  [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" = "$need" ]
}
export GOMODCACHE="$root/.cache/go/mod" GOCACHE="$root/.cache/go/build" GOFLAGS=-mod=mod
go_bin=$(command -v go || true)
if [ -z "$go_bin" ]; then
  apt_install golang-go
  go_bin=$(command -v go)
fi
have=$("$go_bin" env GOVERSION)
if ! go_at_least "$have" "$go_min"; then
  if go_at_least "$have" 1.21; then
    # Go 1.21 and later fetch the toolchain that go.mod asks for by themselves.
    export GOTOOLCHAIN="$go_toolchain"
  else
    # Older Go (Debian bookworm has 1.19) predates that; fetch the same
    # toolchain module from the proxy by hand and use its go.
    tc="golang.org/toolchain@v0.0.1-$go_toolchain.linux-$("$go_bin" env GOARCH)"
    dir="$GOMODCACHE/$tc"
    if [ ! -x "$dir/bin/go" ]; then
      (cd "$(mktemp -d)" && GOFLAGS= "$go_bin" mod download "$tc")
      chmod -R u+w "$dir"
      chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*
    fi
    go_bin="$dir/bin/go"
  fi
fi
bin=.cache/bin/franz-interop
src=tests/interop/franz
if [ ! -x "$bin" ] || [ -n "$(find "$src" -newer "$bin" -type f)" ]; then
  mkdir -p .cache/bin
  (cd "$src" && env -u GOROOT "$go_bin" build -o "$root/$bin" .)
  echo "franz-go test program at $bin"
fi
