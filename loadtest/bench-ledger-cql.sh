#!/usr/bin/env bash
# The ledger's earn over gRPC on the CQL store (a Cassandra 5.0 node, tests/cql/cluster.sh),
# against the embedded store and the PostgreSQL baseline, in one run on this machine (issue 14).
#
#   calibration  a closed loop of earn on the CQL store sets the open-loop rate R: half its
#                throughput, a rate all three arms sustain;
#   rounds       interleaved, each arm in turn on fresh data:
#                  embedded  memberd --target all on a fresh data directory;
#                  cql       memberd --target all, storage = "scylla", on fresh keyspaces;
#                  pg        ../shared/bench/pg-ledger-baseline.sh (PG_RATE=R);
#                each memberd arm: a short warm-up (which opens the wallets), the closed loop
#                of earn (throughput, p50/p99/p99.9), then earn as an open loop at R (latency
#                counted from each request's scheduled start). Around the cql arm's closed
#                loop, the node's own counters (loadtest/cql-counters.py): statements, reads,
#                writes, conditional writes (LWT), system.paxos writes, per earn; and the
#                node's coordinator latencies after its open loop; memberd's own Earn latency
#                during the open loop (its grpc_request_duration_seconds histogram) beside
#                the client's.
#
# Usage: loadtest/bench-ledger-cql.sh [seconds=10] [clients=64] [members=10000] [rounds=3]
# Figures go to stdout and to target/bench/cql-*.json. Loopback only. The Cassandra node is
# started for the run and stopped after it (a node named "bench" already running is used).
# With SCYLLA_NODES (and SCYLLA_DATACENTER, SCYLLA_FLAVOUR) naming a cluster, a ScyllaDB one
# say, the cql arm runs on it instead; its counters and CPU are then not read.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-64} members=${3:-10000} rounds=${4:-3}
warmup_secs=3
out_dir=target/bench
mkdir -p "$out_dir"
rm -f "$out_dir"/cql-*
step() { printf '\n==> %s\n' "$*" >&2; }

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest

cql_started=""
data=""
source loadtest/memberd.sh
cleanup() {
  stop_memberd
  rm -rf ${data:+"$data"}
  [ -z "$cql_started" ] || bash tests/cql/cluster.sh stop bench
}
trap cleanup EXIT

# The node's counters and CPU are read only from a node this script's cluster.sh runs.
node_pid=""
if [ -n "${SCYLLA_NODES:-}" ]; then
  step "using the cluster SCYLLA_NODES names: ${SCYLLA_NODES} (its counters are not read)"
  SCYLLA_DATACENTER=${SCYLLA_DATACENTER:-datacenter1} SCYLLA_FLAVOUR=${SCYLLA_FLAVOUR:-scylladb}
  SCYLLA_NODES=${SCYLLA_NODES%%,*}
else
  if bash tests/cql/cluster.sh status bench >/dev/null 2>&1; then
    step "using the running Cassandra node \"bench\""
  else
    step "starting a Cassandra 5.0 node for the run"
    bash tests/cql/cluster.sh start bench one >/dev/null
    cql_started=1
  fi
  set -a
  # SCYLLA_NODES, SCYLLA_DATACENTER, SCYLLA_FLAVOUR
  . target/cql/bench/env
  set +a
  bash tests/cql/cluster.sh status bench
  node_pid=$(cat target/cql/bench/dc1/pid)
fi
counters() { [ -n "$node_pid" ] && python3 loadtest/cql-counters.py "$@"; }

memberd_key=$(head -c 32 /dev/urandom | base64)
# memberd's settings for the CQL store, on keyspaces `<prefix>_*`, into the array cql_env.
set_cql_env() {
  local prefix=$1
  cql_env=(MEMBERD_STORAGE=scylla "MEMBERD_SCYLLA__FLAVOUR=$SCYLLA_FLAVOUR"
    "MEMBERD_SCYLLA__NODES=[\"$SCYLLA_NODES\"]"
    "MEMBERD_SCYLLA__LOCAL_DATACENTER=$SCYLLA_DATACENTER"
    "MEMBERD_SCYLLA__REPLICATION={$SCYLLA_DATACENTER=1}"
    "MEMBERD_SCYLLA__KEYSPACE_PREFIX=$prefix" "MEMBERD_MEMBER__MASTER_KEY=$memberd_key")
}

# memberd's own histogram of Earn (grpc_request_duration_seconds), as JSON {le: count}.
earn_buckets() {
  curl -sf "http://$http/metrics" | python3 -c '
import json, re, sys
buckets = {}
for line in sys.stdin:
    m = re.match(r"grpc_request_duration_seconds_bucket\{(.*)\} (\S+)", line)
    if m and "LedgerService/Earn" in m.group(1):
        le = re.search(r"le=\"([^\"]+)\"", m.group(1)).group(1)
        buckets[le] = float(m.group(2))
print(json.dumps(buckets))'
}

# CPU time a process has used, in ms (user + system, from /proc: clock ticks of 10 ms).
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat"; }
# The node's, or 0 for a cluster this script does not run.
node_cpu_ms() { if [ -n "$node_pid" ]; then cpu_ms "$node_pid"; else echo 0; fi; }

# run_arm ARM ROUND RATE: one memberd arm. RATE empty: calibration (closed loop only).
run_arm() {
  local arm=$1 round=$2 rate=$3 env=()
  local tenant="bench-$arm-$round" prefix="bench_r${round}_$$"
  data=$(mktemp -d)
  if [ "$arm" = cql ]; then
    set_cql_env "$prefix"
    env=("${cql_env[@]}")
    env "${env[@]}" target/release/memberd --data-dir "$data" migrate >/dev/null
  fi
  env+=(MEMBERD_EVENTS__BUS=embedded)
  memberd_start_secs=30 start_memberd "$data" "$out_dir/memberd-cql-bench.log" "${env[@]}"
  local load=(target/release/loadgen bench --target "http://$grpc" --clients "$clients"
    --members "$members" --tenant "$tenant" --request-timeout-ms 10000)
  step "round $round: $arm: warm-up and wallets"
  "${load[@]}" --phases earn --seconds "$warmup_secs" >/dev/null
  if [ "$arm" = cql ]; then
    counters sample bench dc1 "${prefix}_ledger,${prefix}_identity,${prefix}_member" \
      >"$out_dir/cql-$round-before.json" || true
  fi
  step "round $round: $arm: earn, closed loop"
  local cpu_before="$(cpu_ms "$memberd_pid") $(node_cpu_ms)"
  "${load[@]}" --phases earn --seconds "$secs" --wallets-exist \
    --json "$out_dir/cql-$arm-$round-earn.json"
  # CPU of memberd and of the Cassandra node (idle in the embedded arm) during the loop.
  echo "$cpu_before $(cpu_ms "$memberd_pid") $(node_cpu_ms)" >"$out_dir/cql-$arm-$round-cpu.txt"
  if [ "$arm" = cql ] && [ -n "$node_pid" ]; then
    counters sample bench dc1 "${prefix}_ledger,${prefix}_identity,${prefix}_member" \
      >"$out_dir/cql-$round-after.json"
    local ops
    ops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phases"][0]["ops"])' \
      "$out_dir/cql-$arm-$round-earn.json")
    counters per-op "$out_dir/cql-$round-before.json" \
      "$out_dir/cql-$round-after.json" "$ops" >"$out_dir/cql-$round-per-earn.json"
  fi
  if [ -n "$rate" ]; then
    step "round $round: $arm: earn, open loop at $rate/s"
    earn_buckets >"$out_dir/cql-$arm-$round-server-before.json"
    "${load[@]}" --phases earn-at-half --open-loop-rate "$rate" --seconds "$secs" \
      --wallets-exist --json "$out_dir/cql-$arm-$round-at-rate.json"
    earn_buckets >"$out_dir/cql-$arm-$round-server-after.json"
    if [ "$arm" = cql ] && [ -n "$node_pid" ]; then
      counters sample bench dc1 >"$out_dir/cql-$round-at-rate-node.json"
      awk '/VmRSS/ {print int($2/1024)}' "/proc/$node_pid/status" >"$out_dir/cql-$round-node-rss.txt"
    fi
  fi
  stop_memberd
  rm -rf "$data"
  data=""
}

step "calibration: earn on the CQL store, closed loop"
run_arm cql 0 ""
rate=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["phases"][0]["throughput_per_s"] / 2))' \
  "$out_dir/cql-cql-0-earn.json")
step "the open loops of every arm run at $rate earns/s (half the CQL store's closed-loop throughput)"

baseline=../shared/bench/pg-ledger-baseline.sh
for round in $(seq "$rounds"); do
  run_arm embedded "$round" "$rate"
  run_arm cql "$round" "$rate"
  if [ -f "$baseline" ]; then
    step "round $round: pg (16 clients, the baseline's default), open loop at $rate/s"
    PG_RATE=$rate bash "$baseline" "$secs" 16 "$members" | tee "$out_dir/cql-pg-$round.txt"
  fi
done

step "summary"
python3 - "$out_dir" "$rounds" "$rate" <<'PY'
import json, os, statistics, sys
out, rounds, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def phase(arm, r, kind):
    with open(f"{out}/cql-{arm}-{r}-{kind}.json") as f:
        return json.load(f)["phases"][0]
def pg(r):
    path = f"{out}/cql-pg-{r}.txt"
    if not os.path.exists(path):
        return None
    fields = {}
    for line in open(path):
        words = line.split()
        if len(words) > 1 and words[0] == "pg-baseline":
            for w in words[2:]:
                k, _, v = w.partition("=")
                fields[f"{words[1]}.{k}"] = float(v)
    return fields
def server(arm, r):
    """memberd's p50 and p99 of Earn during the open loop, in ms: interpolated within the
    buckets of its histogram, as Prometheus' histogram_quantile does."""
    before = json.load(open(f"{out}/cql-{arm}-{r}-server-before.json"))
    after = json.load(open(f"{out}/cql-{arm}-{r}-server-after.json"))
    bounds = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after)
    total = bounds[-1][1]
    def quantile(q):
        rank, lower, below = q * total, 0.0, 0.0
        for upper, count in bounds:
            if count >= rank:
                if upper == float("inf"):
                    return lower * 1000
                return (lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)) * 1000
            lower, below = upper, count
        return float("nan")
    return quantile(0.5), quantile(0.99)
med = statistics.median
def cpu_per_earn(arm, r):
    """memberd's and the Cassandra node's CPU per earn of the closed loop, in ms."""
    m0, n0, m1, n1 = map(float, open(f"{out}/cql-{arm}-{r}-cpu.txt").read().split())
    ops = phase(arm, r, "earn")["ops"]
    return (m1 - m0) / ops, (n1 - n0) / ops
rows = {"embedded": [], "cql": [], "pg": []}
print(f"open loops at {rate} earns/s; latencies in ms; server = memberd's own Earn latency")
print("round arm       earn/s   p50    p99    p99.9 | at-rate p50  p99    p99.9 | server p50  p99")
for r in range(1, rounds + 1):
    for arm in ("embedded", "cql"):
        e, a = phase(arm, r, "earn"), phase(arm, r, "at-rate")
        s = server(arm, r)
        rows[arm].append((e["throughput_per_s"], e["p50_ms"], e["p99_ms"], e["p999_ms"],
                          a["p50_ms"], a["p99_ms"], a["p999_ms"], s[0], s[1]))
        x = rows[arm][-1]
        print(f"{r:5} {arm:8} {x[0]:8.0f} {x[1]:6.2f} {x[2]:6.2f} {x[3]:7.2f} | "
              f"{x[4]:10.2f} {x[5]:6.2f} {x[6]:7.2f} | {x[7]:9.2f} {x[8]:6.2f}")
    p = pg(r)
    if p:
        rows["pg"].append((p["earn.tps"], p["earn.latency_ms"], p["earn-at-rate.p50_ms"],
                           p["earn-at-rate.p99_ms"], p["earn-at-rate.p999_ms"]))
        x = rows["pg"][-1]
        print(f"{r:5} pg       {x[0]:8.0f} {x[1]:6.2f} (mean)        | "
              f"{x[2]:10.2f} {x[3]:6.2f} {x[4]:7.2f} |")
print()
for arm in ("embedded", "cql"):
    cpu = [cpu_per_earn(arm, r) for r in range(1, rounds + 1)]
    node = med([c[1] for c in cpu])
    node = f"{node:.3f} ms" if os.path.exists(f"{out}/cql-1-per-earn.json") else "not read"
    print(f"CPU per earn, {arm}: memberd {med([c[0] for c in cpu]):.3f} ms, Cassandra node "
          f"{node} (median of the rounds; loadgen not counted)")
for arm in ("embedded", "cql"):
    cols = list(zip(*rows[arm]))
    print(f"median {arm}: earn/s {med(cols[0]):.0f}, p50/p99/p99.9 {med(cols[1]):.2f}/"
          f"{med(cols[2]):.2f}/{med(cols[3]):.2f} ms; at {rate}/s p50/p99/p99.9 "
          f"{med(cols[4]):.2f}/{med(cols[5]):.2f}/{med(cols[6]):.2f} ms; "
          f"server p50/p99 {med(cols[7]):.2f}/{med(cols[8]):.2f} ms")
if rows["pg"]:
    cols = list(zip(*rows["pg"]))
    print(f"median pg: earn tps {med(cols[0]):.0f}; at {rate}/s p50/p99/p99.9 "
          f"{med(cols[2]):.2f}/{med(cols[3]):.2f}/{med(cols[4]):.2f} ms")
ratios = [c[0] / e[0] for c, e in zip(rows["cql"], rows["embedded"])]
print(f"ratio cql/embedded earn/s per round: {', '.join(f'{x:.3f}' for x in ratios)}; "
      f"median {med(ratios):.3f}")
if rows["pg"]:
    ratios = [c[0] / p[0] for c, p in zip(rows["cql"], rows["pg"])]
    print(f"ratio cql/pg earn/s per round: {', '.join(f'{x:.3f}' for x in ratios)}; "
          f"median {med(ratios):.3f}")
if not os.path.exists(f"{out}/cql-1-per-earn.json"):
    print("\nthe cluster's own counters: not read (SCYLLA_NODES names a cluster this script "
          "does not run)")
    sys.exit(0)
per = [json.load(open(f"{out}/cql-{r}-per-earn.json")) for r in range(1, rounds + 1)]
print()
print("per earn on the Cassandra node (its own counters, closed loop, relay and publisher "
      "included; median of the rounds):")
for key in ("statements", "prepared_statements", "batches", "reads", "writes", "cas_writes",
            "cas_reads", "range_reads", "cas_write_contention_rounds",
            "cas_write_condition_not_met", "paxos_table_reads", "paxos_table_writes"):
    print(f"  {key:30} {med([p[key] for p in per]):7.3f}")
print("  by table (the node's local reads / writes per earn; tables with none left out):")
for table in sorted(per[0].get("tables", {})):
    reads = med([p["tables"][table][0] for p in per])
    writes = med([p["tables"][table][1] for p in per])
    if reads >= 0.0005 or writes >= 0.0005:
        name = table.split("_", 3)[-1]  # bench_r<round>_<pid>_ledger.wallets: ledger.wallets
        print(f"    {name:28} reads {reads:6.3f}  writes {writes:6.3f}")
node = [json.load(open(f"{out}/cql-{r}-at-rate-node.json")) for r in range(1, rounds + 1)]
print(f"the node's coordinator latencies after the open loop (us, median of the rounds):")
for key in ("reads", "writes", "cas_writes"):
    print(f"  {key:10} p50 {med([n[key + '_50th_us'] for n in node]):8.0f}  "
          f"p99 {med([n[key + '_99th_us'] for n in node]):8.0f}  "
          f"p99.9 {med([n[key + '_999th_us'] for n in node]):8.0f}")
rss = [int(open(f"{out}/cql-{r}-node-rss.txt").read()) for r in range(1, rounds + 1)]
print(f"the node's resident memory after each round: {', '.join(map(str, rss))} MiB")
PY
