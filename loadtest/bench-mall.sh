#!/usr/bin/env bash
# Points-mall redemption orders (issue 17), in one run on this machine, beside the PostgreSQL
# baseline a retail IT team would build first:
#   1. N generated members imported into a fresh data directory (loadtest/gen-members.py,
#      cached), memberd started (release, --target all, embedded store and bus), 100 items
#      I000..I099 and one hot item HOT (a service for 100 points, stock that no run orders
#      out, a limit per member and month that no run reaches), and an item LAST of 1,000 units;
#      every member given points in the ledger (loadgen's setup);
#   2. R interleaved rounds of orders spread over the 100 items: memberd, a closed loop of C
#      clients over gRPC, each order PlaceMallOrder (the unit and the member's limit taken,
#      the points held in the ledger) then ChangeMallOrder confirm (the points taken), a fresh
#      order id for a random member, S seconds; then PostgreSQL, pgbench with C clients for S
#      seconds of the same order as one transaction: the item's stock row and the member's
#      points row locked (`SELECT ... FOR UPDATE`), both moved, the member's count for the
#      month upserted, the ledger entry and the order inserted;
#   2b. in the same rounds, memberd again with each order placed and confirmed in one call
#      (PlaceMallOrder with confirm);
#   3. R interleaved rounds of the same on the one hot item HOT, in every arm;
#   4. oversell: LAST ordered by both arms for S seconds with far more orders than units:
#      each must sell exactly 1,000, and memberd must have taken the points of exactly
#      1,000 orders;
#   5. medians of the rounds and the ratios memberd/pg, with memberd's own server-side
#      histograms of the two calls next to the clients' figures.
# Usage: loadtest/bench-mall.sh [seconds=10] [clients=32] [rounds=3] [members=20000]
# Needs python3 and curl; uses the local PostgreSQL (its Unix socket, as the postgres user),
# or installs Debian's postgresql and starts it for the run. Loopback only; every phase is
# bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} clients=${2:-32} rounds=${3:-3} members=${4:-20000}
target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/bench
mkdir -p "$out_dir"
tenant=benchco
price=100
step() { printf '\n==> %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

source loadtest/postgres.sh
start_postgres bench-mall
trap stop_postgres EXIT

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest
memberd_bin=$target_dir/release/memberd
loadgen=$target_dir/release/loadgen

source loadtest/memberd.sh
work=$(mktemp -d)
chmod 755 "$work"
db=mall_baseline_$$
cleanup() {
  stop_memberd
  rm -rf "$work"
  as_pg dropdb --if-exists "$db" >/dev/null 2>&1 || true
  stop_postgres
}
trap cleanup EXIT

imported_memberd "$members" "$out_dir/memberd-mall.log"
# item ID UNITS: a car wash for $price points, UNITS in the central stock.
item() {
  curl -sf -X PUT "http://$http/v1/tenants/$tenant/mall/items/$1" "${json[@]}" \
    -d "{\"id\":\"$1\",\"kind\":{\"kind\":\"service\",\"sku\":\"WASH-1\"},
         \"name\":{\"zh\":\"洗车\",\"en\":\"Car wash\"},\"category\":\"services\",
         \"price\":{\"points\":$price,\"cash\":0},\"stock\":{\"*\":$2},
         \"limit\":{\"count\":1000000,\"period\":\"month\"},\"time_zone\":\"Asia/Shanghai\"}" \
    >/dev/null
}
spread=$(printf 'I%03d,' $(seq 0 99))
spread=${spread%,}
for id in ${spread//,/ } HOT; do item "$id" 100000000; done
item LAST 1000

step "PostgreSQL: the same items, members' points and orders"
as_pg createdb "$db"
pg() { as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
pg <<SQL
CREATE TABLE items (id text PRIMARY KEY, price_points bigint NOT NULL, remaining bigint NOT NULL);
CREATE TABLE accounts (member_id text PRIMARY KEY, points bigint NOT NULL);
CREATE TABLE entries (id uuid PRIMARY KEY, member_id text NOT NULL, amount bigint NOT NULL,
  kind text NOT NULL, reference text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON entries (member_id, at);
CREATE TABLE member_orders (item text, member_id text, period text, n int NOT NULL,
  PRIMARY KEY (item, member_id, period));
CREATE TABLE orders (id uuid PRIMARY KEY, item text NOT NULL, member_id text NOT NULL,
  state text NOT NULL, points bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO items SELECT 'I' || lpad(g::text, 3, '0'), $price, 100000000 FROM generate_series(0, 99) g;
INSERT INTO items VALUES ('HOT', $price, 100000000), ('LAST', $price, 1000);
INSERT INTO accounts SELECT 'M' || lpad(g::text, 8, '0'), 100000000 FROM generate_series(0, $((members - 1))) g;
-- One redemption order, whole, in the caller's transaction: the stock row, then the points
-- row, locked; refused (nothing written) when the item is sold out, the member's limit is
-- reached or the points are short.
CREATE FUNCTION redeem_item(p_item text, p_member text) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
  left_units bigint; cost bigint; balance bigint; counted int;
  month text := to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM');
  order_id uuid := gen_random_uuid();
BEGIN
  SELECT remaining, price_points INTO left_units, cost FROM items WHERE id = p_item FOR UPDATE;
  IF left_units IS NULL OR left_units < 1 THEN RETURN 'sold_out'; END IF;
  SELECT points INTO balance FROM accounts WHERE member_id = p_member FOR UPDATE;
  IF balance IS NULL OR balance < cost THEN RETURN 'insufficient_points'; END IF;
  INSERT INTO member_orders VALUES (p_item, p_member, month, 1)
    ON CONFLICT (item, member_id, period) DO UPDATE SET n = member_orders.n + 1
    WHERE member_orders.n < 1000000
    RETURNING n INTO counted;
  IF counted IS NULL THEN RETURN 'limit_reached'; END IF;
  UPDATE items SET remaining = remaining - 1 WHERE id = p_item;
  UPDATE accounts SET points = points - cost WHERE member_id = p_member;
  INSERT INTO entries VALUES (gen_random_uuid(), p_member, -cost, 'mall', 'mall:' || p_item || '/' || order_id);
  INSERT INTO orders VALUES (order_id, p_item, p_member, 'fulfilled', cost);
  RETURN 'fulfilled';
END \$\$;
VACUUM ANALYZE;
SQL
order_sql() {
  cat <<SQL
\\set n random(0, $((members - 1)))
\\set i random(0, 99)
SELECT redeem_item($1, 'M' || lpad(:n::text, 8, '0'));
SQL
}
order_sql "'I' || lpad(:i::text, 3, '0')" >"$work/spread.sql"
order_sql "'HOT'" >"$work/hot.sql"
order_sql "'LAST'" >"$work/last.sql"

# memberd's server-side histograms of the two calls, as JSON {method: {le: count}}.
server_buckets() {
  curl -sf "http://$http/metrics" | python3 -c '
import json, re, sys
series = {}
for line in sys.stdin:
    m = re.match(r"grpc_request_duration_seconds_bucket\{(.*)\} (\S+)", line)
    if not m or not re.search(r"CampaignService/(PlaceMallOrder|ChangeMallOrder)\"", m.group(1)):
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(1)))
    series.setdefault(labels["method"], {})[labels["le"]] = float(m.group(2))
print(json.dumps(series))'
}

step "setup: points for each of $members members in memberd's ledger"
"$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases order --items HOT \
  --members "$members" --clients 1 --seconds 1 >/dev/null

: >"$work/rounds.txt"
# round WORKLOAD N ITEMS: memberd's closed loop of orders of ITEMS, then pgbench running
# $work/WORKLOAD.sql, each with $clients clients for $secs s; one line each in rounds.txt.
round() {
  local workload=$1 n=$2 items=$3 tps lat
  step "round $n of $rounds: memberd orders ($workload), $clients clients, $secs s (load average $(load))"
  server_buckets >"$work/server-$workload-$n-before.json"
  "$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases order --items "$items" \
    --wallets-exist --members "$members" --clients "$clients" --seconds "$secs" \
    --json "$work/memberd-$workload-$n.json" | sed "s/^phase=order /phase=$workload /" |
    tee -a "$work/rounds.txt"
  server_buckets >"$work/server-$workload-$n-after.json"
  step "round $n of $rounds: memberd orders ($workload) in one call each (load average $(load))"
  "$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases order --items "$items" \
    --at-once --wallets-exist --members "$members" --clients "$clients" --seconds "$secs" \
    --json "$work/memberd-$workload-at-once-$n.json" |
    sed "s/^phase=order /phase=$workload-at-once /" | tee -a "$work/rounds.txt"
  step "round $n of $rounds: PostgreSQL orders ($workload), $clients clients, $secs s (load average $(load))"
  as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" \
    -f "$work/$workload.sql" "$db" >"$work/pgbench-$workload-$n.txt" 2>&1 ||
    { cat "$work/pgbench-$workload-$n.txt" >&2; exit 1; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench-$workload-$n.txt")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$work/pgbench-$workload-$n.txt")
  echo "pg-$workload round=$n throughput_per_s=$tps latency_avg_ms=$lat" | tee -a "$work/rounds.txt"
}
for n in $(seq 1 "$rounds"); do round spread "$n" "$spread"; done
for n in $(seq 1 "$rounds"); do round hot "$n" HOT; done

step "oversell: an item of 1,000 units, $clients clients for $secs s in each arm"
"$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases order --items LAST \
  --wallets-exist --members "$members" --clients "$clients" --seconds "$secs" \
  --max-errors 1000000000 --json "$work/memberd-last.json" >/dev/null
taken=$(curl -sf "http://$http/v1/tenants/$tenant/mall/items/LAST" "${json[@]}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["taken"]["*"])')
# ops counts every answer; SOLD_OUT answers are the rejected ones.
acked=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["phases"][0]; print(p["ops"] - p["rejected"])' \
  "$work/memberd-last.json")
as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$work/last.sql" "$db" >/dev/null 2>&1
pg_sold=$(pg -At -c "SELECT count(*) FROM orders WHERE item = 'LAST'")
pg_paid=$(pg -At -c "SELECT count(*) FROM entries WHERE reference LIKE 'mall:LAST/%'")
pg_left=$(pg -At -c "SELECT remaining FROM items WHERE id = 'LAST'")
echo "oversell memberd: taken=$taken acknowledged=$acked (of 1000)"
echo "oversell pg: orders=$pg_sold paid=$pg_paid remaining=$pg_left (of 1000)"
[ "$taken" = 1000 ] && [ "$acked" = 1000 ] && [ "$pg_sold" = 1000 ] && [ "$pg_paid" = 1000 ] &&
  [ "$pg_left" = 0 ] || {
  echo "bench-mall: an item of 1,000 units did not sell exactly 1,000" >&2
  exit 1
}

step "summary (medians of $rounds rounds)"
python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith(("phase=", "pg-"))]
def fields(r):
    return dict(kv.split("=", 1) for kv in r if "=" in kv)
for name, pg_name in (("spread", "spread"), ("spread-at-once", "spread"), ("hot", "hot"),
                      ("hot-at-once", "hot")):
    mem = [fields(r) for r in rows if r[0] == f"phase={name}"]
    pg = [fields(r) for r in rows if r[0] == f"pg-{pg_name}"]
    m = statistics.median(float(r["throughput_per_s"]) for r in mem)
    p = statistics.median(float(r["throughput_per_s"]) for r in pg)
    p99 = statistics.median(float(r["p99_ms"]) for r in mem)
    pg_lat = statistics.median(float(r["latency_avg_ms"]) for r in pg)
    print(f"memberd {name} orders/s median={m:.0f} rounds={[round(float(r['throughput_per_s'])) for r in mem]} p99_ms median={p99:.1f}")
    print(f"pg {pg_name} orders/s median={p:.0f} rounds={[round(float(r['throughput_per_s'])) for r in pg]} latency_avg_ms median={pg_lat:.1f}")
    print(f"ratio {name} memberd/pg={m / p:.2f}")
PY
# Server-side: memberd's own histograms over its rounds, as the bucket bound under which 50%
# and 99% of the calls finished.
python3 - "$work" "$rounds" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def bound(buckets, q):
    items = sorted(((float("inf") if le == "+Inf" else float(le)), n) for le, n in buckets.items())
    total = items[-1][1]
    for le, n in items:
        if total and n >= q * total:
            return le * 1000
for workload in ("spread", "hot"):
    summed = {}
    for n in range(1, rounds + 1):
        a = json.load(open(f"{work}/server-{workload}-{n}-before.json"))
        b = json.load(open(f"{work}/server-{workload}-{n}-after.json"))
        for s, bs in b.items():
            for le, c in bs.items():
                summed.setdefault(s, {}).setdefault(le, 0)
                summed[s][le] += c - a.get(s, {}).get(le, 0)
    for s, b in sorted(summed.items()):
        if max(b.values(), default=0) > 0:
            print(f"server-side {workload} {s}: calls={int(max(b.values()))} p50_ms<={bound(b, 0.5)} p99_ms<={bound(b, 0.99)}")
PY
