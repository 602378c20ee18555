#!/bin/sh
# Entrypoint of the Fjord image (deploy/Dockerfile), for docker compose and
# for a Kubernetes StatefulSet alike. Configuration is a Kafka-style
# server.properties template plus `--override key=value` arguments, by
# Kafka's key names; this script only fills in what differs per broker:
#
#   node.id      FJORD_NODE_ID, else the StatefulSet pod ordinal at the end
#                of the host name plus one (fjord-0 -> 1, fjord-2 -> 3), as
#                Kafka and MSK number brokers from 1.
#   broker.rack  FJORD_RACK when it is not empty (compose sets it; the
#                StatefulSet takes it from the pod's zone label).
#
# The template (FJORD_CONFIG, default /etc/fjord/server.properties) may use
# ${NAME} for any environment variable that is set and not empty; the script
# also sets HOSTNAME, FJORD_NODE_ID and FJORD_EXTERNAL_PORT (default
# FJORD_EXTERNAL_BASE_PORT + node.id - 1, base 8443: the broker's own port on
# the load balancer), and picks this broker's entry of FJORD_EXTERNAL_HOST
# when it is a comma-separated list (one per broker, by node.id). The result
# goes to FJORD_RUN_DIR (default /tmp) and fjord starts with
#
#   fjord start --config <rendered> --override node.id=N [--override broker.rack=R] "$@"
#
# so arguments given to the container (`--override key=value`) win. An
# argument that is not an option runs as a command instead (`fjord bench ...`,
# `sh`). FJORD_BIN (default fjord) names the binary; deploy/check.sh sets it
# to test this script outside a container.
set -eu
set -f # no globbing: values are split on commas below

me=docker-entrypoint.sh
die() {
    echo "$me: $*" >&2
    exit 64
}

case "${1:-}" in
    '' | -*) ;;
    *) exec "$@" ;;
esac

# Docker and Kubernetes set HOSTNAME to the container's host name (the pod's
# name in a StatefulSet); dash does not set it on its own.
HOSTNAME=${HOSTNAME:-$(cat /proc/sys/kernel/hostname)}
export HOSTNAME

# Digits without leading zeros, so that shell arithmetic reads them as decimal.
decimal() {
    d=$1
    while :; do
        case $d in
            0?*) d=${d#0} ;;
            *) break ;;
        esac
    done
    printf '%s' "$d"
}

# node.id: FJORD_NODE_ID, else the ordinal after the last '-' of the host name + 1.
if [ -n "${FJORD_NODE_ID:-}" ]; then
    case $FJORD_NODE_ID in
        *[!0-9]*) die "FJORD_NODE_ID must be a non-negative integer, not '$FJORD_NODE_ID'" ;;
    esac
    node_id=$(decimal "$FJORD_NODE_ID")
    node_id_from="FJORD_NODE_ID"
else
    case $HOSTNAME in
        *-*) ordinal=${HOSTNAME##*-} ;;
        *) ordinal= ;;
    esac
    case $ordinal in
        '' | *[!0-9]*) die "no FJORD_NODE_ID, and host name '$HOSTNAME' does not end in -<ordinal> as a StatefulSet pod's does" ;;
    esac
    node_id=$(($(decimal "$ordinal") + 1))
    node_id_from="host name $HOSTNAME"
fi
FJORD_NODE_ID=$node_id
export FJORD_NODE_ID

# Entry node.id (1-based) of the comma-separated list $1, or its only entry;
# $2 names the list for the error.
for_this_node() {
    what=$2
    case $1 in
        *,*) ;;
        *)
            printf '%s' "$1"
            return
            ;;
    esac
    old_ifs=$IFS
    IFS=,
    # shellcheck disable=SC2086 # split on commas on purpose (globbing is off)
    set -- $1
    IFS=$old_ifs
    if [ "$node_id" -lt 1 ] || [ "$node_id" -gt $# ]; then
        die "$what has $# entries, none for node.id $node_id"
    fi
    shift $((node_id - 1))
    printf '%s' "$1"
}

if [ -n "${FJORD_EXTERNAL_HOST:-}" ]; then
    FJORD_EXTERNAL_HOST=$(for_this_node "$FJORD_EXTERNAL_HOST" FJORD_EXTERNAL_HOST)
    export FJORD_EXTERNAL_HOST
fi
if [ -z "${FJORD_EXTERNAL_PORT:-}" ]; then
    base=${FJORD_EXTERNAL_BASE_PORT:-8443}
    case $base in
        '' | *[!0-9]*) die "FJORD_EXTERNAL_BASE_PORT must be a port number, not '$base'" ;;
    esac
    FJORD_EXTERNAL_PORT=$(($(decimal "$base") + node_id - 1))
fi
export FJORD_EXTERNAL_PORT

# Copies template $1 to $2 with each ${NAME} replaced by that variable's value.
render() {
    # shellcheck disable=SC2016 # ${NAME} is what the template holds, literally
    names=$(grep -o '\${[A-Za-z_][A-Za-z0-9_]*}' "$1" | sed 's/^\${\(.*\)}$/\1/' | sort -u) || true
    script=
    for name in $names; do
        # $name matched [A-Za-z_][A-Za-z0-9_]* above, so eval sees a plain name.
        eval "value=\${$name-}"
        [ -n "$value" ] || die "$1 uses \${$name}, which is not set or empty"
        case $value in
            *'
'*) die "\${$name} must be one line" ;;
        esac
        escaped=$(printf '%s\n' "$value" | sed 's/[\\&|]/\\&/g')
        script="${script}s|[\$]{$name}|$escaped|g
"
    done
    sed "$script" "$1" >"$2"
}

# Ours go before the container's arguments, so that those win.
if [ -n "${FJORD_RACK:-}" ]; then
    set -- --override "broker.rack=$FJORD_RACK" "$@"
fi
set -- --override "node.id=$node_id" "$@"
config=${FJORD_CONFIG:-/etc/fjord/server.properties}
if [ -f "$config" ]; then
    rendered=${FJORD_RUN_DIR:-/tmp}/server.properties
    render "$config" "$rendered"
    set -- --config "$rendered" "$@"
else
    echo "$me: no $config (FJORD_CONFIG): fjord's defaults and the overrides only" >&2
fi
# One line on what was derived, as a JSON line like fjord's own when the
# settings ask for tracing.format=json (the container's arguments win).
format=
if [ -n "${rendered:-}" ]; then
    format=$(sed -n 's/^[[:space:]]*tracing\.format[[:space:]]*[=:][[:space:]]*\([a-z]*\).*/\1/p' "$rendered" | tail -n 1)
fi
for arg in "$@"; do
    case $arg in
        tracing.format=*) format=${arg#tracing.format=} ;;
    esac
done
said="node.id $node_id (from $node_id_from), broker.rack ${FJORD_RACK:-unset}, external port $FJORD_EXTERNAL_PORT"
if [ "$format" = json ]; then
    said=$(printf '%s' "$said" | sed 's/[\\"]/\\&/g')
    printf '{"timestamp":"%s","level":"INFO","message":"%s","target":"%s"}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$said" "$me" >&2
else
    echo "$me: $said" >&2
fi
exec "${FJORD_BIN:-fjord}" start "$@"
