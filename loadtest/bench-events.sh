#!/usr/bin/env bash
# The events benchmark (issue 3), in one run on this machine, in rounds of three arms, each on a
# fresh data directory: the ledger's earn throughput with the in-process bus (`embedded`), with
# NATS JetStream (`nats`), and with NATS plus a consumer of the events in loadgen that measures
# each event's lag from commit to arrival (`watched`). The consumer shares the two cores, so its
# arm is reported but the throughput ratio is nats/embedded.
# Usage: loadtest/bench-events.sh [seconds=10] [clients=64] [members=10000] [rounds=2]
# Figures go to stdout and, as JSON, to target/bench/events-*.json. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-64} members=${3:-10000} rounds=${4:-2}
out_dir=target/bench
mkdir -p "$out_dir"

step() { printf '\n==> %s\n' "$*" >&2; }

command -v nats-server >/dev/null || {
  echo "nats-server is missing: install the Debian package nats-server" >&2
  exit 1
}
step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest

source loadtest/memberd.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
nats_url="nats://127.0.0.1:$port"
nats_dir=""
nats_pid=""
data=""
memberd_pid=""
# A fresh nats-server for each arm: a stream written by another data directory is refused by
# memberd's publisher (see docs/decisions/0006).
start_nats() {
  nats_dir=$(mktemp -d)
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$nats_dir" >"$out_dir/nats-server.log" 2>&1 &
  nats_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  echo "nats-server did not start; see $out_dir/nats-server.log" >&2
  exit 1
}
stop_nats() {
  if [ -n "$nats_pid" ]; then
    kill "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
  fi
  nats_pid=""
  if [ -n "$nats_dir" ]; then rm -rf "$nats_dir"; fi
  nats_dir=""
}
cleanup() {
  stop_memberd
  stop_nats
  rm -rf ${data:+"$data"}
}
trap cleanup EXIT

# run_round ARM ROUND: a fresh memberd for ARM (embedded, nats or watched), then the earn phase.
run_round() {
  local arm=$1 round=$2 bus=nats watch=()
  [ "$arm" = embedded ] && bus=embedded
  [ "$bus" = nats ] && start_nats
  data=$(mktemp -d)
  start_memberd "$data" "$out_dir/memberd-$arm.log" \
    MEMBERD_EVENTS__BUS="$bus" MEMBERD_EVENTS__NATS__URL="$nats_url"
  [ "$arm" = watched ] && watch=(--watch-events "$nats_url")
  step "round $round: $arm (events.bus=$bus)"
  target/release/loadgen bench --target "http://$grpc" --seconds "$secs" --clients "$clients" \
    --members "$members" --phases earn "${watch[@]}" --json "$out_dir/events-$arm-$round.json"
  stop_memberd
  rm -rf "$data"
  data=""
  stop_nats
}

for round in $(seq "$rounds"); do
  run_round embedded "$round"
  run_round nats "$round"
  run_round watched "$round"
done

step "summary"
python3 - "$out_dir" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(arm, r):
    with open(f"{out}/events-{arm}-{r}.json") as f:
        return json.load(f)
def tput(run):
    return run["phases"][0]["throughput_per_s"]
emb = [tput(load("embedded", r)) for r in range(1, rounds + 1)]
nat = [tput(load("nats", r)) for r in range(1, rounds + 1)]
watched = [load("watched", r) for r in range(1, rounds + 1)]
for r in range(rounds):
    ev, w = watched[r]["events"], tput(watched[r])
    print(f"round {r+1}: earn/s embedded={emb[r]:.0f} nats={nat[r]:.0f} "
          f"ratio={nat[r]/emb[r]:.3f} | watched earn/s={w:.0f} events={ev['events']} "
          f"lag_p50_ms={ev['p50_ms']:.0f} lag_p99_ms={ev['p99_ms']:.0f} "
          f"lag_p999_ms={ev['p999_ms']:.0f} lag_max_ms={ev['max_ms']:.0f}")
print(f"mean: earn/s embedded={sum(emb)/rounds:.0f} nats={sum(nat)/rounds:.0f} "
      f"ratio nats/embedded={sum(nat)/sum(emb):.3f}")
PY
