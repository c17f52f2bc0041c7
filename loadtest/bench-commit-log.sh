#!/usr/bin/env bash
# The ledger's hot path (decision 0017) against its references, in one run on this machine:
#   1. throughput: ROUNDS interleaved rounds of PostgreSQL's earn (../shared/bench/
#      pg-ledger-baseline.sh, 16 clients) and, on a fresh memberd each, `loadgen bench --phases
#      earn,echo` (64 clients; echo is the no-op gRPC ceiling); medians, and the ratios
#      earn/echo and earn/PostgreSQL;
#   2. latency at half of PostgreSQL's median peak, LONG seconds each: PostgreSQL (pgbench -R)
#      and memberd (open loop), counted from each request's scheduled start, with memberd's
#      server-side figures and the load generator's own send lag;
#   3. memberd at half of its own median peak, LONG seconds: the server-side commit histogram;
#   4. memory and restart: a memberd with WALLETS wallets and EARNS_SECS of earns on them (its
#      resident size), then kill -9, and the time until it serves again.
# Usage: loadtest/bench-commit-log.sh [seconds=10] [rounds=5] [long=120] [wallets=1000000] [earn_secs=60]
# STEPS=4 runs only the memory and restart part (steps 2 and 3 need step 1's medians, so they
# run only with it); the default is every step.
# Loopback only. Takes about 5 × (2 × seconds) + 5 × long + the wallets' setup.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} rounds=${2:-5} long=${3:-120} wallets=${4:-1000000} earn_secs=${5:-60}
out_dir=target/bench
mkdir -p "$out_dir"
step() { printf '\n==> %s\n' "$*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

steps=" ${STEPS:-1 2 3 4} "
want() { [[ "$steps" == *" $1 "* ]]; }

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest

baseline=../shared/bench/pg-ledger-baseline.sh
[ -f "$baseline" ] || { echo "$baseline is missing" >&2; exit 1; }
source loadtest/postgres.sh
source loadtest/memberd.sh
start_postgres bench-commit-log
data=""
cleanup() {
  stop_memberd
  [ -z "$data" ] || rm -rf "$data"
  stop_postgres
}
trap cleanup EXIT

fresh_memberd() {
  stop_memberd
  [ -z "$data" ] || rm -rf "$data"
  data=$(mktemp -d)
  start_memberd "$data" "$out_dir/memberd-commit-log.log" "$@"
}

# Server-side quantiles from a Prometheus histogram: bucket bounds at or above the quantile.
server_side() {
  curl -s "http://$http/metrics" | python3 -c '
import re, sys
name, label = sys.argv[1], sys.argv[2]
b = []
for l in sys.stdin:
    if l.startswith(name + "_bucket") and label in l:
        le = re.search(r"le=\"([^\"]+)\"", l).group(1)
        b.append((float("inf") if le == "+Inf" else float(le), float(l.rsplit(" ", 1)[1])))
b.sort()
if not b or b[-1][1] == 0:
    sys.exit(0)
n = b[-1][1]
q = lambda p: next(le for le, v in b if v >= p * n) * 1000
over20 = n - next(v for le, v in b if le >= 0.02)
print("server %s n=%d p50_ms<=%g p99_ms<=%g p999_ms<=%g max_ms<=%g over_20ms=%d" % (
    sys.argv[3], n, q(.5), q(.99), q(.999), q(1.0), over20))
' "$1" "$2" "$3"
}

if want 1; then
  step "1. throughput: $rounds rounds of PostgreSQL earn, then memberd earn and the echo ceiling ($secs s each)"
  pg_tps=() earn_tps=() echo_tps=()
  for round in $(seq "$rounds"); do
    pg=$(bash "$baseline" "$secs" 16 10000 | grep '^pg-baseline earn ')
    pg_tps+=("$(field tps <<<"$pg")")
    fresh_memberd
    out=$(target/release/loadgen bench --target "http://$grpc" --seconds "$secs" --clients 64 \
      --members 10000 --phases earn,echo 2>&1 | grep '^phase=')
    earn_tps+=("$(grep '^phase=earn ' <<<"$out" | field throughput_per_s)")
    echo_tps+=("$(grep '^phase=echo ' <<<"$out" | field throughput_per_s)")
    echo "round $round: pg=${pg_tps[-1]}/s earn=${earn_tps[-1]}/s echo=${echo_tps[-1]}/s"
  done
  pg_med=$(printf '%s\n' "${pg_tps[@]}" | median)
  earn_med=$(printf '%s\n' "${earn_tps[@]}" | median)
  echo_med=$(printf '%s\n' "${echo_tps[@]}" | median)
  awk -v e="$earn_med" -v c="$echo_med" -v p="$pg_med" 'BEGIN {
    printf "medians: earn=%.0f/s echo=%.0f/s pg=%.0f/s ratio earn/echo=%.3f (target 0.5) earn/pg=%.2f (target 3)\n", e, c, p, e / c, e / p }'

  half_pg=$(awk -v p="$pg_med" 'BEGIN { printf "%d", p / 2 }')
  step "2. latency at half PostgreSQL's peak ($half_pg/s), $long s each"
  PG_RATE=$half_pg bash "$baseline" "$long" 16 10000 | grep 'earn-at-rate'
  fresh_memberd
  target/release/loadgen bench --target "http://$grpc" --seconds "$long" --clients 64 \
    --members 10000 --phases earn-at-half --open-loop-rate "$half_pg" 2>&1 | grep '^phase='
  server_side grpc_request_duration_seconds 'Earn"' earn
  server_side ledger_store_commit_seconds '' commit

  half_own=$(awk -v e="$earn_med" 'BEGIN { printf "%d", e / 2 }')
  step "3. memberd at half its own peak ($half_own/s), $long s"
  fresh_memberd
  target/release/loadgen bench --target "http://$grpc" --seconds "$long" --clients 64 \
    --members 10000 --phases earn-at-half --open-loop-rate "$half_own" 2>&1 | grep '^phase='
  server_side grpc_request_duration_seconds 'Earn"' earn
  server_side ledger_store_commit_seconds '' commit
  server_side ledger_store_checkpoint_seconds '' checkpoint
fi

want 4 || exit 0

step "4. memory and restart: $wallets wallets, $earn_secs s of earns on them"
# The load generator's access token must outlast the setup and the earns.
fresh_memberd MEMBERD_STORE__CACHED_WALLETS=$((wallets + wallets / 10)) \
  MEMBERD_IDENTITY__ACCESS_TTL_SECS=$((earn_secs + 7200))
target/release/loadgen bench --target "http://$grpc" --seconds "$earn_secs" --clients 64 \
  --members "$wallets" --setup-in-flight 256 --setup-timeout-secs 3600 --phases earn 2>&1 |
  grep -E '^(setup|phase=)'
entries=$(curl -s "http://$http/metrics" | sed -n 's/^events_published_sequence{service="ledger"} //p')
echo "memberd resident: $(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' "/proc/$memberd_pid/status") with $wallets wallets, ledger change sequence ${entries:-?}"
echo "data directory: $(du -sh "$data" | cut -f1)"
kill -9 "$memberd_pid"
wait "$memberd_pid" 2>/dev/null || true
memberd_pid=""
started=$(date +%s.%N)
memberd_start_secs=300 start_memberd "$data" "$out_dir/memberd-commit-log.log" MEMBERD_STORE__CACHED_WALLETS=$((wallets + wallets / 10))
awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "restart after kill -9: serving again in %.2f s\n", e - s }'
