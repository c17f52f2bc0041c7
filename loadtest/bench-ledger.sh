#!/usr/bin/env bash
# The ledger benchmark, in one run on this machine:
#   1. the PostgreSQL baseline (../shared/bench/pg-ledger-baseline.sh), when PostgreSQL is here;
#   2. an all-in-one, durable `memberd` on a fresh data directory;
#   3. `loadgen bench` against it: earn, mix, the no-op gRPC echo ceiling and earn at half peak,
#      with the ratios earn/echo and earn/pg.
# Usage: loadtest/bench-ledger.sh [seconds=10] [clients=64] [members=10000]
# Figures go to stdout and, as JSON, to target/bench/ledger.json. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-64} members=${3:-10000}
out_dir=target/bench
mkdir -p "$out_dir"

step() { printf '\n==> %s\n' "$*" >&2; }

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest

pg_args=()
baseline=../shared/bench/pg-ledger-baseline.sh
if [ -x "$(command -v pgbench || true)" ] && [ -f "$baseline" ]; then
  step "PostgreSQL baseline: $secs s, 16 clients (the script's default), $members members"
  pg_out=$(bash "$baseline" "$secs" 16 "$members")
  echo "$pg_out"
  pg_tps=$(sed -n 's/^pg-baseline earn .*tps=\([0-9.]*\).*/\1/p' <<<"$pg_out")
  [ -n "$pg_tps" ] && pg_args=(--pg-baseline-tps "$pg_tps")
else
  echo "PostgreSQL baseline skipped: pgbench or $baseline is missing" >&2
fi

source loadtest/memberd.sh
data=$(mktemp -d)
memberd_pid=""
cleanup() {
  stop_memberd
  rm -rf "$data"
}
trap cleanup EXIT

step "starting memberd --target all on $data"
start_memberd "$data" "$out_dir/memberd.log"

step "loadgen bench against $grpc"
target/release/loadgen bench --target "http://$grpc" --seconds "$secs" --clients "$clients" \
  --members "$members" "${pg_args[@]}" --json "$out_dir/ledger.json"
