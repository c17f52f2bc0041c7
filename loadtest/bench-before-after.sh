#!/usr/bin/env bash
# The REST earn path of the code at REV against this checkout, in one run on this machine:
# rounds of two arms, interleaved, each a fresh release memberd (--target all, embedded store
# and bus) on a fresh data directory, called as a till would be (an API key of the tenant,
# role partner), loaded with `loadgen bench --api rest --phases earn,earn-at-half`:
#   earn          a closed loop of POST /v1/tenants/{t}/members/{m}/earnings: throughput;
#   earn-at-half  an open loop at RATE earns/s, the same for both arms, latency counted from
#                 each request's scheduled start.
# Server-side, memberd's CPU time per earn is read from /proc over each round.
# Usage: loadtest/bench-before-after.sh REV [seconds=10] [clients=64] [members=10000] [rounds=5] [rate=4000]
# Figures go to stdout and, as JSON, to target/bench/before-after-*.json. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: loadtest/bench-before-after.sh REV [seconds] [clients] [members] [rounds] [rate]}
secs=${2:-10} clients=${3:-64} members=${4:-10000} rounds=${5:-5} rate=${6:-4000}
out_dir=target/bench
mkdir -p "$out_dir"
step() { printf '\n==> %s\n' "$*" >&2; }

base_src="$out_dir/before-src"
step "building memberd at $rev (in $base_src), then this checkout's memberd and loadgen"
rm -rf "$base_src"
git worktree prune
git worktree add --detach -f "$base_src" "$rev" >/dev/null
# One target directory for both: the dependencies are built once.
(cd "$base_src" && cargo build --release --locked -p memberd --target-dir ../../../target)
cp target/release/memberd "$out_dir/memberd-before"
git worktree remove --force "$base_src"
cargo build --release --locked -p memberd -p loyalty-loadtest
cp target/release/memberd "$out_dir/memberd-after"
sync
source loadtest/memberd.sh
data=""
trap 'stop_memberd; rm -rf ${data:+"$data"}' EXIT

tenant=benchco
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }

run_arm() {
  local arm=$1 round=$2 log="$out_dir/memberd-before-after-$1.log"
  memberd_bin="$out_dir/memberd-$arm"
  data=$(mktemp -d)
  start_memberd "$data" "$log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000 \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_API_KEY=1000000000
  LOADGEN_TOKEN=$(partner_key "$http" "$LOADGEN_TOKEN")
  step "round $round: $arm"
  local cpu_before
  cpu_before=$(cpu_ms "$memberd_pid")
  target/release/loadgen bench --api rest --target "http://$http" --seconds "$secs" \
    --clients "$clients" --members "$members" --phases earn,earn-at-half \
    --open-loop-rate "$rate" --tenant "$tenant" --json "$out_dir/before-after-$arm-$round.json"
  echo "$cpu_before $(cpu_ms "$memberd_pid")" >"$out_dir/before-after-$arm-$round-cpu.txt"
  stop_memberd
  rm -rf "$data"
  data=""
}

for round in $(seq "$rounds"); do
  # Alternate which arm goes first, so neither always meets the machine in the same state.
  if [ $((round % 2)) = 1 ]; then
    run_arm before "$round"
    run_arm after "$round"
  else
    run_arm after "$round"
    run_arm before "$round"
  fi
done

step "summary ($rev against this checkout)"
python3 - "$out_dir" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def phases(arm, r):
    with open(f"{out}/before-after-{arm}-{r}.json") as f:
        return {p["phase"]: p for p in json.load(f)["phases"]}
def cpu(arm, r):
    a, b = map(float, open(f"{out}/before-after-{arm}-{r}-cpu.txt").read().split())
    ops = sum(p["ops"] for p in phases(arm, r).values())
    return (b - a) / ops
med = statistics.median
rows = {arm: [phases(arm, r) for r in range(1, rounds + 1)] for arm in ("before", "after")}
for r in range(rounds):
    b, a = rows["before"][r], rows["after"][r]
    print(f"round {r + 1}: earn/s before={b['earn']['throughput_per_s']:.0f} "
          f"after={a['earn']['throughput_per_s']:.0f} | at the fixed rate p50/p99 ms "
          f"before={b['earn-at-half']['p50_ms']:.2f}/{b['earn-at-half']['p99_ms']:.2f} "
          f"after={a['earn-at-half']['p50_ms']:.2f}/{a['earn-at-half']['p99_ms']:.2f}")
for arm in ("before", "after"):
    x = rows[arm]
    print(f"median {arm}: earn/s {med([p['earn']['throughput_per_s'] for p in x]):.0f}, "
          f"closed-loop p99 {med([p['earn']['p99_ms'] for p in x]):.2f} ms, "
          f"at {x[0]['earn-at-half']['throughput_per_s']:.0f}/s p50 "
          f"{med([p['earn-at-half']['p50_ms'] for p in x]):.2f} ms p99 "
          f"{med([p['earn-at-half']['p99_ms'] for p in x]):.2f} ms, "
          f"memberd CPU {med([cpu(arm, r) for r in range(1, rounds + 1)]):.3f} ms per earn")
ratio = med([rows['after'][r]['earn']['throughput_per_s'] / rows['before'][r]['earn']['throughput_per_s']
             for r in range(rounds)])
print(f"median round after/before throughput: {ratio:.3f}")
PY
