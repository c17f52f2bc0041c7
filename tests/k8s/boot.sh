#!/usr/bin/env bash
# The rendered chart boots: renders charts/memberd in split mode with
# tests/k8s/boot-values.yaml, runs the migrate hook Job's container and then every
# Deployment's container as local processes of the memberd binary, each with the command,
# arguments, environment and memberd.toml the chart rendered, and requires every process to
# pass its probes and an earn to go through the gateway (tests/k8s/boot.py).
#
#   bash tests/k8s/boot.sh [--memberd PATH]     PATH: default target/debug/memberd
#
# It needs the CQL cluster (SCYLLA_NODES, SCYLLA_DATACENTER, SCYLLA_FLAVOUR, as
# tests/cql/cluster.sh's env file sets them); without SCYLLA_NODES it says it was skipped
# and exits 0. It starts its own NATS (JetStream) and Redis servers on free ports, and uses a
# keyspace prefix of its own on the cluster. Logs go to target/k8s/boot/.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=target/k8s/boot
CHART=charts/memberd
MEMBERD=target/debug/memberd

started=$(date +%s.%N)
step() { printf '\n==> %s\n' "$*"; }
fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  printf 'boot: FAILED\n'
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --memberd) [ $# -ge 2 ] || fail "--memberd needs a path"; MEMBERD=$2; shift 2 ;;
    --memberd=*) MEMBERD=${1#--memberd=}; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument $1 (usage: bash tests/k8s/boot.sh [--memberd PATH])" ;;
  esac
done

if [ -z "${SCYLLA_NODES:-}" ]; then
  step "boot test: SKIPPED: it needs the CQL cluster, and SCYLLA_NODES is not set (tests/run.sh \
sets it for the Cassandra node of tests/cql/cluster.sh)"
  exit 0
fi
DATACENTER=${SCYLLA_DATACENTER:-datacenter1}

# Everything started here is stopped here, whatever ends the run: one at a time, in the
# order of pids, so that boot.py stops the memberd processes while NATS and Redis still run.
pids=()
work=""
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'printf "\nboot: interrupted\n" >&2; exit 130' INT
trap 'printf "\nboot: terminated\n" >&2; exit 143' TERM
trap 'fail "command failed at line $LINENO of tests/k8s/boot.sh"' ERR

# --- Tools and the binary ---------------------------------------------------------------------
# Helm and the Python venv with PyYAML (TOOLS, HELM, PY), shared with tests/k8s/check.sh.
# shellcheck source=tests/k8s/tools.sh
. tests/k8s/tools.sh
install_k8s_tools
for tool in nats-server redis-server; do
  command -v "$tool" >/dev/null || fail "$tool is missing (tests/run.sh installs it)"
done

if [ ! -x "$MEMBERD" ]; then
  case $MEMBERD in
    target/debug/memberd | ./target/debug/memberd) profile=() ;;
    target/release/memberd | ./target/release/memberd) profile=(--release) ;;
    *) fail "$MEMBERD is not an executable" ;;
  esac
  step "building memberd: $MEMBERD is missing (cargo build -p memberd${profile[*]/#/ })"
  CARGO_INCREMENTAL=0 cargo build -p memberd --locked "${profile[@]}" ||
    fail "cargo build -p memberd failed"
  [ -x "$MEMBERD" ] || fail "cargo build -p memberd made no $MEMBERD"
fi

# --- The data tier the render points at -------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/memberd-boot-tier.XXXXXX")
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Until host:port accepts a connection, or the process with pid $3 has gone.
wait_port() {
  "$PY" - "$@" <<'EOF'
import os, socket, sys, time
host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        socket.create_connection((host, port), 1).close()
        sys.exit(0)
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    time.sleep(0.1)
sys.exit(1)
EOF
}

step "NATS (JetStream) and Redis for the run"
nats_port=$(free_port)
nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$work/nats" >"$OUT/nats.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$nats_port" "${pids[-1]}" ||
  { tail -20 "$OUT/nats.log" >&2; fail "nats-server did not listen on 127.0.0.1:$nats_port"; }
echo "    nats-server -js on 127.0.0.1:$nats_port (pid ${pids[-1]}, store in $work/nats)"
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
  >"$OUT/redis.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$redis_port" "${pids[-1]}" ||
  { tail -20 "$OUT/redis.log" >&2; fail "redis-server did not listen on 127.0.0.1:$redis_port"; }
echo "    redis-server on 127.0.0.1:$redis_port (pid ${pids[-1]}, nothing saved)"

# --- Render -----------------------------------------------------------------------------------
# Keyspaces of this run's own: <prefix>_<service>, at most 32 characters of prefix.
prefix="boot_$(date +%s)_$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
flavour=()
[ -z "${SCYLLA_FLAVOUR:-}" ] || flavour=(--set "scylla.flavour=$SCYLLA_FLAVOUR")
step "helm template (split mode) with tests/k8s/boot-values.yaml"
"$HELM" template memberd "$CHART" -n memberd -f tests/k8s/boot-values.yaml \
  --set "scylla.nodes={$SCYLLA_NODES}" \
  --set "scylla.localDatacenter=$DATACENTER" \
  --set "scylla.replication.$DATACENTER=1" \
  --set "scylla.keyspacePrefix=$prefix" \
  "${flavour[@]}" \
  --set "nats.url=nats://127.0.0.1:$nats_port" \
  --set "redis.url=redis://127.0.0.1:$redis_port/0" \
  >"$OUT/render.yaml" || fail "helm template refused tests/k8s/boot-values.yaml"
echo "    scylla ${SCYLLA_NODES} (datacenter $DATACENTER, replication {$DATACENTER: 1}, flavour \
${SCYLLA_FLAVOUR:-cassandra}), keyspaces ${prefix}_*; render in $OUT/render.yaml"

# --- Boot -------------------------------------------------------------------------------------
# In the background so that a signal to this script reaches its trap at once; boot.py stops
# the processes it started when it gets SIGTERM.
"$PY" tests/k8s/boot.py --render "$OUT/render.yaml" --memberd "$MEMBERD" --logs "$OUT" \
  --started "$started" &
boot_pid=$!
pids=("$boot_pid" "${pids[@]}")
rc=0
wait "$boot_pid" || rc=$?
pids=("${pids[@]:1}")
[ "$rc" -eq 0 ] || fail "the rendered chart did not boot (logs in $OUT/)"
