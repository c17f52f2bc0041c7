#!/usr/bin/env bash
# The events benchmark (issue 3), in one run on this machine, in rounds of four arms, each on a
# fresh data directory: the ledger's earn throughput with no publisher at all (`none`, the
# reference for what publication costs), with the embedded bus (`embedded`, stored on local
# disk), with NATS JetStream (`nats`), and with NATS plus a consumer of the events in loadgen
# that measures each event's lag from commit to arrival (`watched`). The consumer shares the two
# cores, so its arm is reported but the target ratio is nats/embedded. Each arm also reads
# memberd's /metrics at the end: events published, and the publication-lag histogram.
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

# cpu_ticks PID: user plus system CPU time of PID in clock ticks (0 without a PID).
cpu_ticks() {
  if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then
    awk '{print $14 + $15}' "/proc/$1/stat"
  else
    echo 0
  fi
}

# run_round ARM ROUND: a fresh memberd for ARM (none, embedded, nats or watched), then the earn
# phase, then a copy of its /metrics.
run_round() {
  local arm=$1 round=$2 bus=nats watch=() off=false
  case "$arm" in
    none) bus=embedded off=true ;;
    embedded) bus=embedded ;;
  esac
  [ "$bus" = nats ] && start_nats
  data=$(mktemp -d)
  start_memberd "$data" "$out_dir/memberd-$arm.log" \
    MEMBERD_EVENTS__BUS="$bus" MEMBERD_EVENTS__NATS__URL="$nats_url" \
    MEMBERD_EVENTS__DISABLE_PUBLISHER="$off"
  [ "$arm" = watched ] && watch=(--watch-events "$nats_url")
  step "round $round: $arm (events.bus=$bus, publisher off: $off)"
  local started memberd_cpu nats_cpu
  started=$(date +%s.%N) memberd_cpu=$(cpu_ticks "$memberd_pid") nats_cpu=$(cpu_ticks "$nats_pid")
  target/release/loadgen bench --target "http://$grpc" --seconds "$secs" --clients "$clients" \
    --members "$members" --phases earn "${watch[@]}" --json "$out_dir/events-$arm-$round.json"
  # CPU used by memberd and nats-server during the run (setup and earn phase), in cores.
  python3 - "$started" "$(date +%s.%N)" "$memberd_cpu" "$(cpu_ticks "$memberd_pid")" \
    "$nats_cpu" "$(cpu_ticks "$nats_pid")" "$(getconf CLK_TCK)" \
    >"$out_dir/events-$arm-$round.cpu.json" <<'PY'
import json, sys
t0, t1, m0, m1, n0, n1, hz = map(float, sys.argv[1:])
cores = lambda a, b: (b - a) / hz / (t1 - t0)
print(json.dumps({"memberd_cores": cores(m0, m1), "nats_cores": cores(n0, n1)}))
PY
  # Let the publisher drain what the last second committed before reading its metrics.
  sleep 2
  curl -sf "http://$http/metrics" >"$out_dir/events-$arm-$round.metrics" || true
  stop_memberd
  rm -rf "$data"
  data=""
  stop_nats
}

for round in $(seq "$rounds"); do
  run_round none "$round"
  run_round embedded "$round"
  run_round nats "$round"
  run_round watched "$round"
done

step "summary"
python3 - "$out_dir" "$rounds" <<'PY'
import json, re, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(arm, r):
    with open(f"{out}/events-{arm}-{r}.json") as f:
        return json.load(f)
def tput(run):
    return run["phases"][0]["throughput_per_s"]
def lag(arm, r):
    """(events published, share with lag <= 1 s, upper bound of p99 in s) from /metrics."""
    try:
        text = open(f"{out}/events-{arm}-{r}.metrics").read()
    except OSError:
        return None
    # The ledger's publisher only: the benchmark writes ledger entries.
    buckets = {float(le): float(n) for le, n in re.findall(
        r'^events_publication_lag_seconds_bucket\{service="ledger",le="([0-9.e+-]+)"\} ([0-9.e+]+)$',
        text, re.M)}
    count = re.search(
        r'^events_publication_lag_seconds_count\{service="ledger"\} ([0-9.e+]+)$', text, re.M)
    if not count or float(count.group(1)) == 0:
        return None
    total = float(count.group(1))
    p99 = next((le for le in sorted(buckets) if buckets[le] >= 0.99 * total), float("inf"))
    return total, buckets.get(1.0, 0) / total, p99
arms = ["none", "embedded", "nats"]
t = {arm: [tput(load(arm, r)) for r in range(1, rounds + 1)] for arm in arms}
for r in range(rounds):
    w = load("watched", r + 1)
    ev = w["events"]
    line = (f"round {r+1}: earn/s none={t['none'][r]:.0f} embedded={t['embedded'][r]:.0f} "
            f"nats={t['nats'][r]:.0f} | nats/embedded={t['nats'][r]/t['embedded'][r]:.3f} "
            f"embedded/none={t['embedded'][r]/t['none'][r]:.3f} nats/none={t['nats'][r]/t['none'][r]:.3f}")
    for arm in ("embedded", "nats"):
        m = lag(arm, r + 1)
        if m:
            line += f" | {arm}: published={m[0]:.0f} lag<=1s={m[1]:.4f} lag_p99<={m[2]}s"
    for arm in arms:
        with open(f"{out}/events-{arm}-{r + 1}.cpu.json") as f:
            cpu = json.load(f)
        c = cpu["memberd_cores"]
        line += f" | {arm}: memberd cores={c:.2f} us/earn={c / t[arm][r] * 1e6:.1f}"
        if arm == "nats":
            line += f" nats-server={cpu['nats_cores']:.2f}"
    line += (f" | watched earn/s={tput(w):.0f} events={ev['events']} lag_p50_ms={ev['p50_ms']:.0f} "
             f"lag_p99_ms={ev['p99_ms']:.0f} lag_p999_ms={ev['p999_ms']:.0f} lag_max_ms={ev['max_ms']:.0f}")
    print(line)
mean = {arm: sum(t[arm]) / rounds for arm in arms}
print(f"mean: earn/s none={mean['none']:.0f} embedded={mean['embedded']:.0f} nats={mean['nats']:.0f} "
      f"| nats/embedded={mean['nats']/mean['embedded']:.3f} embedded/none={mean['embedded']/mean['none']:.3f} "
      f"nats/none={mean['nats']/mean['none']:.3f}")
PY
