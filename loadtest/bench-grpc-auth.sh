#!/usr/bin/env bash
# What checking every gRPC caller costs the ledger's earn path (issue 4), in one run on this
# machine: rounds of two arms, each on a fresh data directory, with the earn phase of the
# ledger benchmark (closed loop):
#   open     memberd --target ledger: the ledger alone, whose gRPC port checks no one;
#   checked  memberd --target all: the same ledger, checking every call (access token verified,
#            or remembered as verified; tenant; casbin decision) and the gateway beside it.
# Usage: loadtest/bench-grpc-auth.sh [seconds=10] [clients=64] [members=10000] [rounds=3]
# Figures go to stdout and, as JSON, to target/bench/grpc-auth-*.json. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-64} members=${3:-10000} rounds=${4:-3}
out_dir=target/bench
mkdir -p "$out_dir"
step() { printf '\n==> %s\n' "$*" >&2; }

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest
source loadtest/memberd.sh
data=""
trap 'stop_memberd; rm -rf ${data:+"$data"}' EXIT

run_arm() {
  local arm=$1 round=$2 target=all
  [ "$arm" = open ] && target=ledger
  data=$(mktemp -d)
  # The same event bus in both arms (alone, the ledger would default to NATS).
  start_memberd "$data" "$out_dir/memberd-grpc-auth.log" MEMBERD_TARGET="$target" \
    MEMBERD_EVENTS__BUS=embedded
  step "round $round: $arm (--target $target)"
  target/release/loadgen bench --target "http://$grpc" --seconds "$secs" --clients "$clients" \
    --members "$members" --phases earn --json "$out_dir/grpc-auth-$arm-$round.json"
  stop_memberd
  rm -rf "$data"
  data=""
}

for round in $(seq "$rounds"); do
  run_arm open "$round"
  run_arm checked "$round"
done

step "summary"
python3 - "$out_dir" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def tput(arm, r):
    with open(f"{out}/grpc-auth-{arm}-{r}.json") as f:
        return json.load(f)["phases"][0]["throughput_per_s"]
opened = [tput("open", r) for r in range(1, rounds + 1)]
checked = [tput("checked", r) for r in range(1, rounds + 1)]
for r in range(rounds):
    print(f"round {r+1}: earn/s open={opened[r]:.0f} checked={checked[r]:.0f} "
          f"checked/open={checked[r]/opened[r]:.3f}")
print(f"mean: earn/s open={sum(opened)/rounds:.0f} checked={sum(checked)/rounds:.0f} "
      f"checked/open={sum(checked)/sum(opened):.3f}")
PY
