#!/usr/bin/env bash
# What the gateway's access checks cost the REST earn path (issue 4), in one run on this
# machine: rounds of two arms, each a fresh memberd (--target all, embedded store and bus) on a
# fresh data directory, loaded with `loadgen bench --api rest --phases earn` (closed loop of
# POST /v1/tenants/{t}/members/{m}/earnings):
#   open     a build with the `bench-unguarded` feature: the same gateway and ledger with no
#            authentication, authorization, rate limit or audit anywhere;
#   guarded  the release build, called as a till would be: with an API key of the tenant
#            (role partner). Every request's key is looked up (or remembered), its tenant
#            checked, a casbin decision taken in the gateway and again in the ledger, the key's
#            and the tenant's rate limits counted, and an audit record appended.
# Usage: loadtest/bench-rest-auth.sh [seconds=10] [clients=64] [members=10000] [rounds=3]
# Figures go to stdout and, as JSON, to target/bench/rest-auth-*.json. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-64} members=${3:-10000} rounds=${4:-3}
out_dir=target/bench
mkdir -p "$out_dir"
step() { printf '\n==> %s\n' "$*" >&2; }

step "building memberd without access checks (benchmark only), then memberd and loadgen"
cargo build --release --locked -p memberd --features bench-unguarded
cp target/release/memberd "$out_dir/memberd-unguarded"
cargo build --release --locked -p memberd -p loyalty-loadtest
# The build leaves gigabytes of dirty pages; written back during a round, they would slow
# whichever arm runs then.
sync
source loadtest/memberd.sh
data=""
trap 'stop_memberd; rm -rf ${data:+"$data"}' EXIT

tenant=benchco


run_arm() {
  local arm=$1 round=$2 log="$out_dir/memberd-rest-auth-$1.log"
  memberd_bin=target/release/memberd
  [ "$arm" = open ] && memberd_bin="$out_dir/memberd-unguarded"
  data=$(mktemp -d)
  # Limits far above the load: the benchmark measures counting, not the limiter saying no.
  start_memberd "$data" "$log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000 \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_API_KEY=1000000000
  # Each arm must be what it claims: the open build says so, the guarded one refuses a stranger.
  local refused
  refused=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Idempotency-Key: probe' \
    "http://$http/v1/tenants/probe/members/m1/wallet")
  if [ "$arm" = open ]; then
    grep -q "UNGUARDED BENCHMARK BUILD" "$log" || { echo "open arm: not the unguarded build" >&2; exit 1; }
    [ "$refused" = 200 ] || { echo "open arm: a request without a token got $refused" >&2; exit 1; }
  else
    [ "$refused" = 401 ] || { echo "guarded arm: a request without a token got $refused" >&2; exit 1; }
    LOADGEN_TOKEN=$(partner_key "$http" "$LOADGEN_TOKEN")
  fi
  step "round $round: $arm"
  target/release/loadgen bench --api rest --target "http://$http" --seconds "$secs" \
    --clients "$clients" --members "$members" --phases earn --tenant "$tenant" \
    --json "$out_dir/rest-auth-$arm-$round.json"
  stop_memberd
  rm -rf "$data"
  data=""
}

for round in $(seq "$rounds"); do
  run_arm open "$round"
  run_arm guarded "$round"
done

step "summary"
python3 - "$out_dir" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def phase(arm, r):
    with open(f"{out}/rest-auth-{arm}-{r}.json") as f:
        return json.load(f)["phases"][0]
for r in range(1, rounds + 1):
    o, g = phase("open", r), phase("guarded", r)
    print(f"round {r}: earn/s open={o['throughput_per_s']:.0f} guarded={g['throughput_per_s']:.0f} "
          f"guarded/open={g['throughput_per_s']/o['throughput_per_s']:.3f} "
          f"p99_ms open={o['p99_ms']:.1f} guarded={g['p99_ms']:.1f}")
opened = sum(phase("open", r)["throughput_per_s"] for r in range(1, rounds + 1))
guarded = sum(phase("guarded", r)["throughput_per_s"] for r in range(1, rounds + 1))
ratios = sorted(phase("guarded", r)["throughput_per_s"] / phase("open", r)["throughput_per_s"]
                for r in range(1, rounds + 1))
median = (ratios[(rounds - 1) // 2] + ratios[rounds // 2]) / 2
print(f"mean: earn/s open={opened/rounds:.0f} guarded={guarded/rounds:.0f} "
      f"guarded/open={guarded/opened:.3f}, median round {median:.3f} (target: at least 0.800)")
PY
