#!/usr/bin/env bash
# Checks deploy/ without Docker or Kubernetes (deploy/README.md, "Checks"):
# the entrypoint's logic under POSIX sh, the Dockerfile with BuildKit's parser
# and its build context with Docker's .dockerignore matcher, the compose file
# with compose-go (docker compose's loader), haproxy's config with haproxy,
# the Kubernetes manifests built by kustomize and validated by kubeconform
# -strict against Kubernetes 1.37's schemas, each validator also against a
# broken copy that it must reject, and a smoke test that runs the compose
# topology natively (three `fjord start` through the entrypoint, haproxy on
# 8443-8445, Kafka's own tools through localhost:8443).
#
# Tools go to .cache/deploy (Go modules from the Go module proxy, the schemas
# from PyPI's kubernetes-validate wheel, haproxy and shellcheck from apt);
# later runs reuse them. Idempotent. Usage:
#   bash deploy/check.sh [--no-smoke]
# FJORD_BIN names the fjord binary of the smoke test (default
# target/release/fjord); it and Kafka's jars (scripts/fetch-kafka.sh) are
# used when present, and the smoke test is skipped, saying so, when not.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache/deploy
mkdir -p "$cache/bin"

smoke=1
for arg in "$@"; do
  case $arg in
    --no-smoke) smoke= ;;
    *) echo "usage: bash deploy/check.sh [--no-smoke]" >&2; exit 2 ;;
  esac
done

# Pinned versions (bump on purpose). Go: the toolchain that builds them all
# (BuildKit's module asks for 1.26.8), as in scripts/install-test-deps.sh.
go_toolchain=go1.26.8
kubeconform_version=v0.8.0
kustomize_version=v5.8.2
# kubernetes-validate ships the JSON schemas of each Kubernetes release,
# generated from Kubernetes' OpenAPI documents, in the layout kubeconform reads.
schemas_package=kubernetes-validate==1.37.0
k8s_version=1.37.0

passed=0 failed=0 skipped=0
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Size in MB of the files under the given directories (0 for none).
mb() { { du -sbc "$@" 2>/dev/null || true; } | awk 'END { printf "%.0f", $1 / 1e6 }'; }

# check NAME COMMAND...: one line, ok or FAIL (then the command's output).
# The command runs in a subshell with errexit on, so that any failing step
# fails the check (errexit would be off inside an `if`).
check() {
  local name=$1 start rc out
  shift
  start=$(now)
  set +e
  (
    set -e
    "$@"
  ) >"$work/check.out" 2>&1
  rc=$?
  set -e
  out=$(cat "$work/check.out")
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf 'ok    %-58s %6ss%s\n' "$name" "$(since "$start")" "${out:+  ($(tail -n1 <<<"$out"))}"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-58s %6ss\n' "$name" "$(since "$start")"
    tail -n 40 "$work/check.out" | sed 's/^/      /'
  fi
}
skip() {
  skipped=$((skipped + 1))
  printf 'skip  %-58s         (%s)\n' "$1" "$2"
}
# rejects NAME COMMAND...: the command must fail (a validator on a broken copy).
rejects() {
  local name=$1
  shift
  check "$name" expect_failure "$@"
}
expect_failure() {
  local out
  if out=$("$@" 2>&1); then
    echo "accepted a broken copy:"
    echo "$out"
    return 1
  fi
  # The validator's own words, without its boilerplate and our scratch paths.
  grep -v -e '^\[NOTICE\]' -e '^Summary:' <<<"$out" | sed -n 1p |
    sed -e "s|$work/||g" -e "s/problem validating schema. Check JSON formatting: jsonschema validation failed with '[^']*' - //" |
    cut -c1-120
}

# --- tools ------------------------------------------------------------------

apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

setup_apt() {
  local need=()
  command -v haproxy >/dev/null || need+=(haproxy)
  command -v shellcheck >/dev/null || need+=(shellcheck)
  command -v python3 >/dev/null || need+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  if ((${#need[@]})); then
    local start
    start=$(now)
    apt_install "${need[@]}"
    echo "setup apt-get install ${need[*]} ($(since "$start") s)"
  fi
}

# Runs a command, showing its output only when it fails.
quietly() {
  local out
  out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }
}

# True when Go version $1 (go1.26.8 or 1.26.0) is at least $2.
go_at_least() {
  local have=${1#go} want=${2#go}
  [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | sed -n 1p)" = "$want" ]
}

# Sets $go to a go command of at least $go_toolchain, fetching that toolchain
# from the Go module proxy when the machine's is older.
setup_go() {
  # -modcacherw: the module cache stays deletable without root.
  export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOFLAGS=-modcacherw GOBIN=$cache/bin
  go=$(command -v go || true)
  if [ -z "$go" ]; then
    apt_install golang-go
    go=$(command -v go)
  fi
  local have
  have=$("$go" env GOVERSION)
  if go_at_least "$have" "$go_toolchain"; then
    export GOTOOLCHAIN=local
  elif go_at_least "$have" 1.21; then
    export GOTOOLCHAIN=$go_toolchain # Go 1.21+ fetches it by itself
  else
    # Debian bookworm's Go 1.19 predates toolchain switching: fetch the
    # toolchain module by hand and use its go.
    local tc dir
    tc="golang.org/toolchain@v0.0.1-$go_toolchain.linux-$("$go" env GOARCH)"
    dir=$GOMODCACHE/$tc
    if [ ! -x "$dir/bin/go" ]; then
      (cd "$(mktemp -d)" && quietly "$go" mod download "$tc")
      chmod -R u+w "$dir"
      chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/*
    fi
    go=$dir/bin/go
    export GOTOOLCHAIN=local
  fi
}

# kubeconform and kustomize (kubectl apply -k's kustomize), built from the
# Go module proxy; our two checkers, built from deploy/tools.
setup_go_tools() {
  local start mod_before stamp want
  start=$(now)
  mod_before=$(mb "$GOMODCACHE/cache/download")
  stamp=$cache/bin/.versions
  want="$go_toolchain kubeconform@$kubeconform_version kustomize@$kustomize_version"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$cache/bin/kubeconform" ] || [ ! -x "$cache/bin/kustomize" ]; then
    quietly env -u GOROOT "$go" install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
    quietly env -u GOROOT "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version"
    echo "$want" >"$stamp"
  fi
  local tool
  for tool in composecheck dockerfilecheck; do
    local src=$root/deploy/tools/$tool
    if [ ! -x "$cache/bin/$tool" ] || [ -n "$(find "$src" -newer "$cache/bin/$tool" -type f)" ]; then
      (cd "$src" && quietly env -u GOROOT "$go" build -o "$cache/bin/$tool" .)
    fi
  done
  local fetched=$(($(mb "$GOMODCACHE/cache/download") - mod_before))
  if [ "$fetched" -gt 0 ] || [ "$(since "$start" | cut -d. -f1)" -gt 2 ]; then
    echo "setup go tools: kubeconform $kubeconform_version, kustomize $kustomize_version, composecheck, dockerfilecheck ($fetched MB of Go modules, $(since "$start") s)"
  fi
}

# Kubernetes $k8s_version's schemas from the kubernetes-validate wheel: the
# "-local-strict" set (additionalProperties: false, like kubectl's
# validation), its absolute $refs made relative so that kubeconform resolves
# them on disk rather than at kubernetes.io.
setup_schemas() {
  local dir=$cache/k8s-schemas stamp=$cache/k8s-schemas/.source start
  [ "$(cat "$stamp" 2>/dev/null)" = "$schemas_package" ] && return
  start=$(now)
  rm -rf "$dir" "$cache/wheel"
  quietly python3 -m pip download -q --disable-pip-version-check --no-cache-dir --no-deps -d "$cache/wheel" "$schemas_package"
  python3 - "$cache/wheel"/*.whl "$dir" "v$k8s_version-local-strict" <<'EOF'
import json, os, sys, zipfile
wheel, out, version = sys.argv[1:]
prefix = "kubernetes_validate/kubernetes-json-schema/" + version + "/"
def relative(x):
    if isinstance(x, dict):
        return {k: v.replace("/api/_definitions.json", "_definitions.json") if k == "$ref" and isinstance(v, str) else relative(v)
                for k, v in x.items() if k != "$id"}
    return [relative(v) for v in x] if isinstance(x, list) else x
os.makedirs(os.path.join(out, version))
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
    for n in names:
        with open(os.path.join(out, version, n[len(prefix):]), "w") as f:
            json.dump(relative(json.loads(z.read(n))), f)
if len(names) < 100:
    sys.exit(f"only {len(names)} schemas for {version} in {wheel}")
EOF
  echo "setup Kubernetes $k8s_version schemas: $(find "$dir/v$k8s_version-local-strict" -name '*.json' | wc -l) kinds from $schemas_package ($(mb "$cache/wheel") MB wheel, $(since "$start") s)"
  rm -rf "$cache/wheel"
  echo "$schemas_package" >"$stamp"
}

setup_apt
setup_go
setup_go_tools
setup_schemas
PATH=$cache/bin:$PATH

# Scratch files of this run; a failed run's stay until the next run.
rm -rf "$cache"/run.*
work=$(mktemp -d "$cache/run.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  ((failed > 0)) || rm -rf "$work"
}
trap cleanup EXIT

# --- the checkers themselves ---------------------------------------------------

go_lint() {
  local tool unformatted
  for tool in composecheck dockerfilecheck; do
    (cd "deploy/tools/$tool" && env -u GOROOT "$go" vet .)
    unformatted=$(env -u GOROOT "$("$go" env GOROOT)/bin/gofmt" -l "deploy/tools/$tool")
    [ -z "$unformatted" ] || { echo "gofmt: $unformatted"; return 1; }
  done
}
check "tools: go vet, gofmt (composecheck, dockerfilecheck)" go_lint

# --- the entrypoint ------------------------------------------------------------

entrypoint=deploy/docker-entrypoint.sh
sh_lint() {
  sh -n "$entrypoint"
  shellcheck -s sh "$entrypoint"
  shellcheck deploy/check.sh
}
check "entrypoint: sh -n, shellcheck (POSIX sh)" sh_lint

# entry EXPECTED_EXIT EXPECTED_OUTPUT [NAME=VALUE...] [ARG...]: runs the
# entrypoint with that environment and those container arguments, and
# FJORD_BIN=echo, under sh (dash on Debian, as in the image).
entry() {
  local want_rc=$1 want=$2 got rc env=()
  shift 2
  entry_cases=$((entry_cases + 1))
  while (($#)) && [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    env+=("$1")
    shift
  done
  rc=0
  got=$(env -i PATH="$PATH" FJORD_BIN=echo FJORD_RUN_DIR="$work" "${env[@]}" sh "$root/$entrypoint" "$@" 2>&1) || rc=$?
  if [ "$rc" != "$want_rc" ] || [[ $got != *"$want"* ]]; then
    echo "with ${env[*]} $*: exit $rc, expected $want_rc and output containing '$want'; got:"
    echo "$got"
    return 1
  fi
}
# The last rendered template has each of these lines.
rendered_has() {
  local line
  for line in "$@"; do
    grep -qxF "$line" "$work/server.properties" || { echo "no $line in:"; cat "$work/server.properties"; return 1; }
  done
}
entrypoint_cases() {
  local none=FJORD_CONFIG=/nonexistent entry_cases=0
  entry 0 "--override node.id=1" HOSTNAME=fjord-0 "$none"
  entry 0 "--override node.id=3" HOSTNAME=fjord-2 "$none"
  entry 0 "--override node.id=11" HOSTNAME=my-fjord-10 "$none"
  entry 0 "--override node.id=8" HOSTNAME=fjord-007 "$none"
  entry 0 "--override node.id=7" HOSTNAME=fjord-2 FJORD_NODE_ID=7 "$none"
  entry 64 "does not end in -<ordinal>" HOSTNAME=fjord "$none"
  entry 64 "does not end in -<ordinal>" HOSTNAME=fjord-x1 "$none"
  entry 64 "must be a non-negative integer" HOSTNAME=fjord-0 FJORD_NODE_ID=one "$none"
  entry 0 "node.id=2 --override broker.rack=az2 --override a=b" HOSTNAME=fjord-1 FJORD_RACK=az2 "$none" --override a=b
  entry 0 "external port 8445" HOSTNAME=fjord-2 "$none"
  entry 0 "external port 9001" HOSTNAME=fjord-1 FJORD_EXTERNAL_BASE_PORT=9000 "$none"
  entry 0 "start bench" HOSTNAME=fjord-0 "$none" echo start bench
  # The templates render for a StatefulSet pod and a compose service.
  sed -n '/^  server.properties: |$/,$ { /^    /s/^    //p; /^$/p }' deploy/k8s/configmap.yaml >"$work/k8s.properties"
  entry 0 "--config $work/server.properties --override node.id=3" HOSTNAME=fjord-2 POD_NAMESPACE=kafka \
    FJORD_EXTERNAL_HOST=a.example,b.example,c.example FJORD_CONFIG="$work/k8s.properties"
  rendered_has 'advertised.listeners=INTERNAL://fjord-2.fjord-headless.kafka.svc:9092,EXTERNAL://c.example:8445' \
    'controller.quorum.voters=1@fjord-0.fjord-headless.kafka.svc:9093,2@fjord-1.fjord-headless.kafka.svc:9093,3@fjord-2.fjord-headless.kafka.svc:9093'
  entry 0 "--override node.id=2 --override broker.rack=az2" HOSTNAME=fjord-2 FJORD_NODE_ID=2 FJORD_RACK=az2 \
    FJORD_EXTERNAL_HOST=localhost FJORD_CONFIG=deploy/compose/server.properties
  rendered_has 'advertised.listeners=INTERNAL://fjord-2:9092,EXTERNAL://localhost:8444'
  entry 64 "uses \${FJORD_EXTERNAL_HOST}, which is not set" HOSTNAME=fjord-2 FJORD_CONFIG=deploy/compose/server.properties
  echo "$entry_cases cases, both templates rendered"
}
check "entrypoint: node.id, rack, ports, templates" entrypoint_cases

# --- Dockerfile and build context -----------------------------------------------

# The workspace's members (Cargo.toml's one-line `members = [...]`) must be sent.
required="Cargo.toml,Cargo.lock,vendor,$entrypoint"
members=$(sed -n 's/^members *= *\[\(.*\)\]/\1/p' Cargo.toml | tr -d ' "')
[ -z "$members" ] || required+=",$members"
# shellcheck disable=SC2054 # the commas separate the checker's list values
dockerfile_args=(-dockerfile deploy/Dockerfile -context . -bin fjord -expose 9092,9093,9094,11001 -volume /var/lib/fjord
  -require "$required" -exclude target,.git,.cache,broker/fuzz,deploy/Dockerfile)
check "Dockerfile: BuildKit parser, image, .dockerignore context" \
  dockerfilecheck "${dockerfile_args[@]}" -export "$work/context"
broken_dockerfile() {
  sed "$1" deploy/Dockerfile >"$work/Dockerfile.broken"
  dockerfilecheck "${dockerfile_args[@]}" -dockerfile "$work/Dockerfile.broken"
}
rejects "Dockerfile: rejects USER fjord (not numeric)" broken_dockerfile 's/^USER .*/USER fjord/'
rejects "Dockerfile: rejects --bin fjrod" broken_dockerfile 's/--bin fjord/--bin fjrod/'
# What `cargo build --locked` inside the image sees: the workspace resolves
# from the exported context with Cargo.lock unchanged.
if command -v cargo >/dev/null && [ -f "$work/context/Cargo.toml" ]; then
  context_metadata() {
    (cd "$work/context" && cargo metadata --locked --format-version 1 >"$work/metadata.json")
    python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
ids = set(m["workspace_members"])
bins = [t["name"] for p in m["packages"] if p["id"] in ids for t in p["targets"] if "bin" in t["kind"]]
print(len(ids), "workspace members, bins:", " ".join(sorted(bins)))
sys.exit("fjord" not in bins)' "$work/metadata.json"
  }
  check "build context: cargo metadata --locked, bin fjord" context_metadata
else
  skip "build context: cargo metadata --locked, bin fjord" "no cargo, or the context export failed"
fi

# --- docker compose and haproxy --------------------------------------------------

compose_plan() {
  composecheck deploy/docker-compose.yml >"$work/plan"
  echo "$(grep -c '^broker ' "$work/plan") brokers, proxy $(grep '^proxy ' "$work/plan" | cut -d' ' -f2)"
}
check "compose: compose-go load, brokers, volumes, proxy routes" compose_plan
# A broken copy beside the real files (relative paths resolve the same).
broken_compose() {
  mkdir -p "$work/deploy"
  cp -r deploy/compose deploy/Dockerfile "$work/deploy/"
  sed "$1" deploy/docker-compose.yml >"$work/deploy/docker-compose.yml"
  composecheck "$work/deploy/docker-compose.yml"
}
rejects "compose: rejects a misspelled key (healthchek)" broken_compose 's/^  healthcheck:/  healthchek:/'
rejects "compose: rejects a proxy port that is not published" broken_compose 's/"8445:8445"/"8446:8445"/'

# haproxy -c resolves the servers' names, which only Docker's DNS knows:
# that warning alone is expected.
haproxy_check() {
  local out
  out=$(haproxy -c -f "$1" 2>&1) || { echo "$out"; return 1; }
  if grep WARNING <<<"$out" | grep -v "could not resolve address 'fjord-[0-9]'"; then return 1; fi
  haproxy -v | sed -n '1s/^\(HAProxy version [^ ]*\).*/\1/p'
}
check "haproxy: haproxy -c deploy/compose/haproxy.cfg" haproxy_check deploy/compose/haproxy.cfg
sed 's/mode tcp/mode tpc/' deploy/compose/haproxy.cfg >"$work/haproxy.broken.cfg"
rejects "haproxy: rejects 'mode tpc'" haproxy_check "$work/haproxy.broken.cfg"

# --- Kubernetes --------------------------------------------------------------------

kubeconform_strict() {
  kubeconform -strict -summary -kubernetes-version "$k8s_version" \
    -schema-location "$cache/k8s-schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"
}
kustomize_build() {
  kustomize build deploy/k8s >"$work/k8s.yaml"
  echo "$(grep -c '^kind:' "$work/k8s.yaml") objects"
}
check "k8s: kustomize build deploy/k8s" kustomize_build
k8s_objects() {
  local want="ConfigMap/fjord-config Service/fjord-headless Service/fjord-0-external Service/fjord-1-external Service/fjord-2-external StatefulSet/fjord PodDisruptionBudget/fjord"
  local got
  got=$(awk '/^kind:/ { k = $2 } /^  name:/ && k { print k "/" $2; k = "" }' "$work/k8s.yaml" | sort | tr '\n' ' ')
  [ "$got" = "$(tr ' ' '\n' <<<"$want" | sort | tr '\n' ' ')" ] || { echo "objects: $got"; return 1; }
  kubeconform_strict "$work/k8s.yaml"
}
check "k8s: kubeconform -strict, Kubernetes $k8s_version" k8s_objects
# What the entrypoint and the template assume of the manifests: pod fjord-I
# (node I+1) behind Service fjord-I-external on port 8443+I, stable names
# under fjord-headless before the pods are ready, all three started at once.
k8s_wiring() {
  local y=$work/k8s.yaml f want services
  for f in deploy/k8s/*.yaml; do
    f=${f##*/}
    [ "$f" = kustomization.yaml ] || grep -qx "  - $f" deploy/k8s/kustomization.yaml ||
      { echo "deploy/k8s/$f is not in kustomization.yaml"; return 1; }
  done
  services=$(awk '/^kind:/ { k = $2 } k == "Service" && /^  name:/ { n = $2 } k == "Service" && /^    port:/ { p = $2 }
    /pod-name:/ { print n, p, $2 }' "$y")
  want=$'fjord-0-external 8443 fjord-0\nfjord-1-external 8444 fjord-1\nfjord-2-external 8445 fjord-2'
  [ "$services" = "$want" ] || { echo "external Services (name port pod):"; echo "$services"; return 1; }
  for want in '  replicas: 3' '  serviceName: fjord-headless' '  podManagementPolicy: Parallel' \
    '  publishNotReadyAddresses: true' '  maxUnavailable: 1'; do
    grep -qx "$want" "$y" || { echo "no '$want'"; return 1; }
  done
  echo "3 pods, 3 external Services, headless Service, PDB"
}
check "k8s: pods, Services and the entrypoint's numbering agree" k8s_wiring
sed 's/podManagementPolicy:/podManagmentPolicy:/' "$work/k8s.yaml" >"$work/k8s.broken.yaml"
rejects "k8s: rejects a misspelled field (podManagmentPolicy)" kubeconform_strict "$work/k8s.broken.yaml"
sed 's/maxUnavailable: 1/maxUnavailable: [1]/' "$work/k8s.yaml" >"$work/k8s.broken2.yaml"
rejects "k8s: rejects a wrong type (maxUnavailable: [1])" kubeconform_strict "$work/k8s.broken2.yaml"

# --- smoke test: the compose topology on 127.0.0.11-13 ---------------------------------
#
# composecheck's plan gives each broker's environment and mounts as compose
# resolves them. Broker N runs the same entrypoint with the same template,
# its host names (fjord-N) and wildcard binds (0.0.0.0) mapped to 127.0.0.1N
# (127.0.0.11-13, clear of a broker on 127.0.0.1:9092), so it keeps
# compose's ports (9092-9094, 11001), and its data volume mapped to a folder;
# haproxy runs the same haproxy.cfg with fjord-N mapped the same way and its
# frontends bound to 127.0.0.1, where the advertised localhost:844N leads.
# Kafka's tools, given only localhost:8443, create an RF 3 topic, produce and
# consume in a group.

fjord_bin=${FJORD_BIN:-$root/target/release/fjord}
kafka_tool=(bash "$root/tests/interop/kafka-tool.sh")

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# HTTP status of GET $3 from $1:$2, or nothing.
http_status() {
  local status=
  {
    exec 3<>"/dev/tcp/$1/$2" &&
      printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3 &&
      read -r -t 5 _ status _ <&3
  } 2>/dev/null || true
  exec 3>&- 2>/dev/null || true
  echo "$status"
}

# Ports free, and the plan is the one this test maps (service fjord-N on host fjord-N).
smoke_preflight() {
  local n port svc host
  for n in 1 2 3; do
    for port in 9092 9093 9094 11001; do
      ! listening "127.0.0.1$n" "$port" || { echo "127.0.0.1$n:$port is in use"; return 1; }
    done
  done
  for port in 8443 8444 8445; do
    ! listening 127.0.0.1 "$port" || { echo "127.0.0.1:$port is in use"; return 1; }
  done
  while read -r _ svc host; do
    [[ $svc =~ ^fjord-[1-3]$ && $host == "$svc" ]] || { echo "unexpected broker $svc (host name $host)"; return 1; }
  done < <(grep '^broker ' "$work/plan")
  echo "ports free"
}

# Starts the brokers and haproxy from this (long-lived) shell, each killed
# if this script dies (setpriv --pdeathsig).
smoke_launch() {
  local s=$work/smoke plan=$work/plan n svc var value source target template data cfg
  mkdir -p "$s"
  while read -r _ svc _; do
    n=${svc##*-}
    mkdir -p "$s/$svc"
    local env=(HOSTNAME="127.0.0.1$n" FJORD_RUN_DIR="$s/$svc" FJORD_BIN="$fjord_bin" PATH="$PATH")
    while read -r _ _ source target; do
      case $target in
        /var/lib/fjord) data=$s/$svc/volume ;;
        *) template=$source ;;
      esac
    done < <(grep "^mount $svc " "$plan")
    mkdir -p "$data"
    sed -e "s/0\.0\.0\.0/127.0.0.1$n/g" -e 's/\bfjord-\([0-9]\)\b/127.0.0.1\1/g' -e "s|/var/lib/fjord|$data|g" \
      "$template" >"$s/$svc/template.properties"
    while IFS='=' read -r var value; do
      [ "$var" != FJORD_CONFIG ] || value=$s/$svc/template.properties
      env+=("$var=$value")
    done < <(grep "^env $svc " "$plan" | cut -d' ' -f3-)
    setpriv --pdeathsig KILL -- env -i "${env[@]}" sh "$root/$entrypoint" >"$s/$svc.log" 2>&1 &
    pids+=($!)
  done < <(grep '^broker ' "$plan")
  cfg=$(grep '^proxy ' "$plan" | cut -d' ' -f3)
  sed -e 's/\b\(server [^ ]* \)fjord-\([0-9]\):/\1127.0.0.1\2:/' -e 's/^\( *bind \+\):/\1127.0.0.1:/' "$cfg" >"$s/haproxy.cfg"
  setpriv --pdeathsig KILL -- haproxy -db -f "$s/haproxy.cfg" >"$s/haproxy.log" 2>&1 &
  pids+=($!)
}

smoke_listening() {
  local n pid s=$work/smoke deadline=$((SECONDS + 30))
  for n in 1 2 3; do
    until listening "127.0.0.1$n" 9094 && listening 127.0.0.1 $((8442 + n)); do
      for pid in "${pids[@]}"; do
        alive "$pid" || { echo "a process exited:"; tail -n 5 "$s"/*.log; return 1; }
      done
      if [ $SECONDS -ge $deadline ]; then
        echo "fjord-$n's EXTERNAL listener or proxy port $((8442 + n)) is not up after 30 s:"
        tail -n 5 "$s/fjord-$n.log" "$s/haproxy.log"
        return 1
      fi
      sleep 0.2
    done
  done
  echo "9092-9094 on 127.0.0.11-13, 8443-8445 on 127.0.0.1"
}

smoke_clients() {
  local s=$work/smoke topic=deploy-smoke i out
  # Creating an RF 3 topic needs all three brokers registered.
  for i in $(seq 1 15); do
    if out=$("${kafka_tool[@]}" kafka-topics --bootstrap-server localhost:8443 --create --if-not-exists --topic "$topic" \
      --partitions 3 --replication-factor 3 2>&1); then
      break
    fi
    [ "$i" -lt 15 ] || { echo "$out"; return 1; }
    sleep 1
  done
  seq 1 30 | sed 's/.*/k&:v&/' >"$s/sent"
  "${kafka_tool[@]}" kafka-console-producer --bootstrap-server localhost:8443 --topic "$topic" \
    --command-property acks=all --reader-property parse.key=true --reader-property key.separator=: <"$s/sent"
  "${kafka_tool[@]}" kafka-console-consumer --bootstrap-server localhost:8443 --topic "$topic" --group smoke \
    --from-beginning --max-messages 30 --timeout-ms 30000 \
    --formatter-property print.key=true --formatter-property key.separator=: >"$s/received" 2>"$s/consumer.log" || true
  if ! diff <(sort "$s/sent") <(sort "$s/received") >/dev/null; then
    echo "sent 30 records, received $(wc -l <"$s/received"):"
    tail -n 5 "$s/consumer.log"
    return 1
  fi
  # Metadata told the clients each broker's own proxy port: all three were used.
  local frontend
  for frontend in broker1 broker2 broker3; do
    grep -q " $frontend $frontend/" "$s/haproxy.log" || { echo "no connection went through $frontend"; return 1; }
  done
  echo "30 records produced and consumed through localhost:8443-8445"
}

# /ready and /metrics on every broker's metrics.listener; "none" when the
# fjord under test does not serve it yet.
smoke_http() {
  local n statuses=
  for n in 1 2 3; do
    statuses+=" $(http_status "127.0.0.1$n" 11001 /ready):$(http_status "127.0.0.1$n" 11001 /metrics)"
  done
  [ "$statuses" != " : : :" ] || { echo none; return; }
  [ "$statuses" = " 200:200 200:200 200:200" ] || { echo "GET /ready:/metrics on fjord-1..3:$statuses"; return 1; }
  echo "GET /ready and /metrics 200 on all three"
}

# tracing.format=json from the template: every line of every broker's
# output (the entrypoint's included) is a JSON object with a level and a message.
smoke_logs() {
  python3 - "$work"/smoke/fjord-[123].log <<'EOF'
import json, sys
lines = 0
for path in sys.argv[1:]:
    for n, line in enumerate(open(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            assert "level" in record and "message" in record
        except (ValueError, AssertionError):
            sys.exit(f"{path}:{n} is not a JSON log line: {line[:200]}")
        lines += 1
print(f"{lines} JSON lines from 3 brokers")
EOF
}

# Running and not a zombie (the brokers are this shell's children, reaped
# only once it waits for them).
alive() {
  local state
  state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

smoke_stop() {
  local pid deadline=$((SECONDS + 30))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while alive "$pid"; do
      [ $SECONDS -lt $deadline ] || { echo "pid $pid still running 30 s after SIGTERM"; return 1; }
      sleep 0.2
    done
  done
  echo "all exited"
}

if [ -z "$smoke" ]; then
  skip "smoke: compose topology natively" "--no-smoke"
elif [ ! -x "$fjord_bin" ]; then
  skip "smoke: compose topology natively" "no $fjord_bin: cargo build --release --bin fjord"
elif ! command -v java >/dev/null || [ ! -f .cache/kafka-libs/.version ]; then
  skip "smoke: compose topology natively" "no java or Kafka jars: bash scripts/fetch-kafka.sh"
elif [ ! -s "$work/plan" ]; then
  skip "smoke: compose topology natively" "composecheck failed"
else
  failed_before=$failed
  check "smoke: ports free, brokers as compose names them" smoke_preflight
  if ((failed == failed_before)); then
    smoke_launch
    check "smoke: 3 brokers via the entrypoint, haproxy.cfg" smoke_listening
    ((failed > failed_before)) || check "smoke: RF 3 topic, produce, consume via localhost:8443" smoke_clients
    if ((failed == failed_before)); then
      if grep -q "unknown config key tracing.format" "$work"/smoke/fjord-[123].log; then
        skip "smoke: broker logs are JSON lines" "this fjord does not know tracing.format yet"
      else
        check "smoke: broker logs are JSON lines" smoke_logs
      fi
      if [ "$(smoke_http)" = none ]; then
        skip "smoke: GET /ready and /metrics on 11001" "this fjord does not serve metrics.listener yet"
      else
        check "smoke: GET /ready and /metrics on 11001" smoke_http
      fi
    fi
    check "smoke: SIGTERM stops brokers and haproxy" smoke_stop
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
    ((failed == failed_before)) || echo "      logs: ${work#"$root"/}/smoke"
  fi
fi

echo "deploy: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
