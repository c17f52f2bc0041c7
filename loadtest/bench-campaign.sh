#!/usr/bin/env bash
# The campaign service at the till and in a flash sale (issue 16), in one run on this machine,
# each beside the PostgreSQL baseline a retail IT team would build first:
#   1. N generated members imported into a fresh data directory (loadtest/gen-members.py,
#      cached), memberd started (release, --target all, embedded store and bus), a coupon
#      template TILL (2.00 off, many uses per code) with one coupon issued to every member,
#      and a flash sale HOT that no run sells out;
#   2. R interleaved rounds of the till's checkout: memberd over gRPC, a closed loop of C
#      clients each sending ValidateCart then Redeem of a random member's coupon (a fresh
#      redemption id per call), S seconds; memberd over REST, the same as the cart's
#      evaluation then the redemption through the gateway; then PostgreSQL, pgbench with C
#      clients for S seconds of the same redemption as one transaction (`SELECT ... FOR
#      UPDATE` on the code and the template's counters, the counters moved, the redemption
#      inserted);
#   2b. R interleaved rounds of the same three arms in an open loop at one rate all of them
#      sustain (half PostgreSQL's median checkout throughput): latency counted from each
#      request's scheduled start (loadgen's open loop; pgbench -R, its per-transaction log,
#      time plus schedule lag), beside memberd's own server-side histograms of the calls;
#   3. R interleaved rounds of flash-sale claims on the one hot sale: memberd, ClaimFlashSale
#      over gRPC (a fresh claim id, a random member); PostgreSQL, one transaction with the
#      conditional UPDATE of the quota (`... SET remaining = remaining - 1 WHERE remaining > 0`),
#      the claim inserted from its RETURNING row and the member's count upserted;
#   4. oversell: a sale of 1,000 units claimed by both arms for S seconds with far more claims
#      than units: each must sell exactly 1,000;
#   5. medians of the rounds and the ratios memberd/pg.
# Usage: loadtest/bench-campaign.sh [seconds=10] [clients=32] [rounds=3] [members=20000]
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
step() { printf '\n==> %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

source loadtest/postgres.sh
start_postgres bench-campaign
trap stop_postgres EXIT

step "building memberd and loadgen (release)"
cargo build --release --locked -p memberd -p loyalty-loadtest
memberd_bin=$target_dir/release/memberd
loadgen=$target_dir/release/loadgen

source loadtest/memberd.sh
work=$(mktemp -d)
chmod 755 "$work"
db=campaign_baseline_$$
cleanup() {
  stop_memberd
  rm -rf "$work"
  as_pg dropdb --if-exists "$db" >/dev/null 2>&1 || true
  stop_postgres
}
trap cleanup EXIT

imported_memberd "$members" "$out_dir/memberd-campaign.log"
# A sale started a minute ago; HOT never sells out in a run, LAST has 1,000 units.
starts=$(( $(date +%s) * 1000 - 60000 ))
sale() {
  curl -sf -X POST "http://$http/v1/tenants/$tenant/flash-sales" "${json[@]}" \
    -H "Idempotency-Key: sale-$1" \
    -d "{\"id\":\"$1\",\"name\":\"Bench $1\",\"item\":{\"kind\":\"item\",\"sku\":\"TEA-1\"},
         \"quotas\":{\"*\":$2},\"per_member_limit\":$3,\"starts_ms\":$starts,\"hold_secs\":600}" \
    >/dev/null
}
sale HOT 10000000 1000000
sale LAST 1000 1000000
curl -sf -X PUT "http://$http/v1/tenants/$tenant/coupon-templates/TILL" "${json[@]}" \
  -d '{"id":"TILL","name":"2.00 off tea","benefit":{"type":"amount_off","amount":200},
       "validity":{"days_from_issue":{"days":30}},"uses_per_code":1000000,
       "stacking":{"mode":"exclusive"}}' >/dev/null

step "PostgreSQL: the same sale as a quota row, claims and members' counts"
as_pg createdb "$db"
pg() { as_pg psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
pg <<SQL
CREATE TABLE quotas (sale text, tier text, remaining bigint NOT NULL, PRIMARY KEY (sale, tier));
CREATE TABLE claims (id uuid PRIMARY KEY, sale text NOT NULL, member_id text NOT NULL,
  tier text NOT NULL, state text NOT NULL, hold_until timestamptz NOT NULL);
CREATE TABLE member_claims (sale text, member_id text, n int NOT NULL, PRIMARY KEY (sale, member_id));
INSERT INTO quotas VALUES ('HOT', '*', 10000000), ('LAST', '*', 1000);
CREATE TABLE templates (id text PRIMARY KEY, amount_off bigint NOT NULL, uses_per_code int NOT NULL,
  total_uses bigint NOT NULL DEFAULT 0);
CREATE TABLE coupons (code text PRIMARY KEY, template text NOT NULL, member_id text NOT NULL,
  valid_until timestamptz NOT NULL, uses int NOT NULL DEFAULT 0);
CREATE TABLE member_uses (template text, member_id text, n int NOT NULL, PRIMARY KEY (template, member_id));
CREATE TABLE redemptions (id uuid PRIMARY KEY, code text NOT NULL, member_id text NOT NULL,
  order_id text NOT NULL, discount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
INSERT INTO templates VALUES ('TILL', 200, 1000000);
INSERT INTO coupons SELECT 'C' || g, 'TILL', 'M' || lpad(g::text, 8, '0'), now() + interval '30 days'
  FROM generate_series(0, $((members - 1))) g;
VACUUM ANALYZE;
SQL
cat >"$work/redeem.sql" <<SQL
\\set n random(0, $((members - 1)))
BEGIN;
SELECT c.uses, c.valid_until, t.amount_off FROM coupons c JOIN templates t ON t.id = c.template
  WHERE c.code = 'C' || :n FOR UPDATE OF c;
SELECT total_uses FROM templates WHERE id = 'TILL' FOR UPDATE;
UPDATE coupons SET uses = uses + 1 WHERE code = 'C' || :n AND uses < 1000000 AND valid_until > now();
INSERT INTO member_uses VALUES ('TILL', 'M' || lpad(:n::text, 8, '0'), 1)
  ON CONFLICT (template, member_id) DO UPDATE SET n = member_uses.n + 1;
UPDATE templates SET total_uses = total_uses + 1 WHERE id = 'TILL';
INSERT INTO redemptions VALUES (gen_random_uuid(), 'C' || :n, 'M' || lpad(:n::text, 8, '0'),
  'o-' || :n, 200);
END;
SQL
claim_sql() {
  cat <<SQL
\\set n random(0, $((members - 1)))
BEGIN;
WITH taken AS (
  UPDATE quotas SET remaining = remaining - 1 WHERE sale = '$1' AND tier = '*' AND remaining > 0
  RETURNING sale)
INSERT INTO claims (id, sale, member_id, tier, state, hold_until)
  SELECT gen_random_uuid(), sale, 'M' || lpad(:n::text, 8, '0'), '*', 'held', now() + interval '10 minutes'
  FROM taken;
INSERT INTO member_claims VALUES ('$1', 'M' || lpad(:n::text, 8, '0'), 1)
  ON CONFLICT (sale, member_id) DO UPDATE SET n = member_claims.n + 1 WHERE member_claims.n < 1000000;
END;
SQL
}
claim_sql HOT >"$work/claim.sql"
claim_sql LAST >"$work/claim-last.sql"

: >"$work/rounds.txt"
# round WORKLOAD N LOADGEN_ARGS...: memberd's closed loop of WORKLOAD (over gRPC, and for
# redeem over REST too), then pgbench running $work/WORKLOAD.sql, each with $clients clients
# for $secs s; one line each in rounds.txt.
round() {
  local workload=$1 n=$2 tps lat
  shift 2
  step "round $n of $rounds: memberd $workload, $clients clients, $secs s (load average $(load))"
  "$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases "$workload" "$@" \
    --members "$members" --clients "$clients" --seconds "$secs" \
    --json "$work/memberd-$workload-$n.json" | tee -a "$work/rounds.txt"
  if [ "$workload" = redeem ]; then
    step "round $n of $rounds: memberd $workload over REST (load average $(load))"
    "$loadgen" bench --api rest --target "http://$http" --tenant "$tenant" --phases redeem "$@" \
      --members "$members" --clients "$clients" --seconds "$secs" \
      --json "$work/memberd-rest-$n.json" | sed 's/^phase=redeem /phase=redeem-rest /' |
      tee -a "$work/rounds.txt"
  fi
  step "round $n of $rounds: PostgreSQL $workload, $clients clients, $secs s (load average $(load))"
  as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" \
    -f "$work/$workload.sql" "$db" >"$work/pgbench-$workload-$n.txt" 2>&1 ||
    { cat "$work/pgbench-$workload-$n.txt" >&2; exit 1; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench-$workload-$n.txt")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$work/pgbench-$workload-$n.txt")
  echo "pg-$workload round=$n throughput_per_s=$tps latency_avg_ms=$lat" | tee -a "$work/rounds.txt"
}
for n in $(seq 1 "$rounds"); do round redeem "$n" --template TILL; done

# memberd's server-side histograms of the checkout's calls, as JSON {series: {le: count}}.
server_buckets() {
  curl -sf "http://$http/metrics" | python3 -c '
import json, re, sys
series = {}
for line in sys.stdin:
    m = re.match(r"(grpc_request_duration_seconds|http_request_duration_seconds)_bucket\{(.*)\} (\S+)", line)
    if not m or not re.search(r"CampaignService/(ValidateCart|Redeem)\"|carts/evaluations|coupon-redemptions\"", m.group(2)):
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(2)))
    le = labels.pop("le")
    name = labels.get("method") if m.group(1).startswith("grpc") else labels.get("route")
    series.setdefault(name, {})[le] = float(m.group(3))
print(json.dumps(series))'
}
rate=$(python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
pg = [float(l.split("throughput_per_s=")[1].split()[0]) for l in open(sys.argv[1]) if l.startswith("pg-redeem ")]
print(round(statistics.median(pg) / 2))
PY
)
for n in $(seq 1 "$rounds"); do
  step "round $n of $rounds: every arm's checkout at $rate/s, open loop, $secs s (load average $(load))"
  server_buckets >"$work/server-grpc-$n-before.json"
  "$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases redeem-at-rate --template TILL \
    --open-loop-rate "$rate" --members "$members" --clients "$clients" --seconds "$secs" \
    --json "$work/memberd-at-rate-$n.json" | tee -a "$work/rounds.txt"
  server_buckets >"$work/server-grpc-$n-after.json"
  "$loadgen" bench --api rest --target "http://$http" --tenant "$tenant" --phases redeem-at-rate \
    --template TILL --open-loop-rate "$rate" --members "$members" --clients "$clients" \
    --seconds "$secs" --json "$work/memberd-rest-at-rate-$n.json" |
    sed 's/^phase=redeem-at-rate /phase=redeem-rest-at-rate /' | tee -a "$work/rounds.txt"
  server_buckets >"$work/server-rest-$n-after.json"
  # pgbench runs as postgres: its per-transaction log goes to a directory it may write.
  rm -rf "$work/pglog" && mkdir "$work/pglog" && chmod 777 "$work/pglog"
  as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" -R "$rate" --log \
    --log-prefix="$work/pglog/$n" -f "$work/redeem.sql" "$db" >"$work/pgbench-at-rate-$n.txt" 2>&1 ||
    { cat "$work/pgbench-at-rate-$n.txt" >&2; exit 1; }
  # Each transaction's latency from its scheduled start: its time plus its schedule lag (us).
  python3 - "$n" "$work"/pglog/"$n".* <<'PY' | tee -a "$work/rounds.txt"
import sys
lat = sorted((int(f[2]) + int(f[6])) / 1000 for p in sys.argv[2:] for f in (l.split() for l in open(p)) if len(f) >= 7)
q = lambda x: lat[min(len(lat) - 1, int(x * len(lat)))]
print(f"pg-redeem-at-rate round={sys.argv[1]} ops={len(lat)} p50_ms={q(0.5):.3f} p99_ms={q(0.99):.3f} p999_ms={q(0.999):.3f}")
PY
done
for n in $(seq 1 "$rounds"); do round claim "$n" --sale HOT; done

step "oversell: a sale of 1,000 units, $clients clients for $secs s in each arm"
"$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases claim --sale LAST \
  --members "$members" --clients "$clients" --seconds "$secs" --max-errors 1000000000 \
  --json "$work/memberd-last.json" >/dev/null
taken=$(curl -sf "http://$http/v1/tenants/$tenant/flash-sales/LAST" "${json[@]}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["taken"]["*"])')
# ops counts every answer; SOLD_OUT answers are the rejected ones.
acked=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["phases"][0]; print(p["ops"] - p["rejected"])' \
  "$work/memberd-last.json")
as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" \
  -f "$work/claim-last.sql" "$db" >/dev/null 2>&1
pg_sold=$(pg -At -c "SELECT count(*) FROM claims WHERE sale = 'LAST'")
pg_left=$(pg -At -c "SELECT remaining FROM quotas WHERE sale = 'LAST'")
echo "oversell memberd: taken=$taken acknowledged=$acked (of 1000)"
echo "oversell pg: claims=$pg_sold remaining=$pg_left (of 1000)"
[ "$taken" = 1000 ] && [ "$acked" = 1000 ] && [ "$pg_sold" = 1000 ] && [ "$pg_left" = 0 ] || {
  echo "bench-campaign: a sale of 1,000 did not sell exactly 1,000" >&2
  exit 1
}

step "summary (medians of $rounds rounds)"
python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith(("phase=", "pg-"))]
def fields(r):
    return dict(kv.split("=", 1) for kv in r if "=" in kv)
for name, pg_name in (("redeem", "pg-redeem"), ("redeem-rest", "pg-redeem"), ("claim", "pg-claim")):
    mem = [fields(r) for r in rows if r[0] == f"phase={name}"]
    pg = [fields(r) for r in rows if r[0] == pg_name]
    m = statistics.median(float(r["throughput_per_s"]) for r in mem)
    p = statistics.median(float(r["throughput_per_s"]) for r in pg)
    p99 = statistics.median(float(r["p99_ms"]) for r in mem)
    print(f"memberd {name}/s median={m:.0f} rounds={[round(float(r['throughput_per_s'])) for r in mem]} p99_ms median={p99:.1f}")
    print(f"pg {pg_name[3:]}/s median={p:.0f} rounds={[round(float(r['throughput_per_s'])) for r in pg]}")
    print(f"ratio {name} memberd/pg={m / p:.2f}")
print("at one rate, latency from each request's scheduled start (medians of the rounds):")
for name in ("phase=redeem-at-rate", "phase=redeem-rest-at-rate", "pg-redeem-at-rate"):
    rs = [fields(r) for r in rows if r[0] == name]
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    print(f"  {name.split('=')[-1]}: p50_ms={med('p50_ms'):.2f} p99_ms={med('p99_ms'):.2f} p999_ms={med('p999_ms'):.2f} rounds_p99={[float(r['p99_ms']) for r in rs]}")
PY
# Server-side: memberd's own histograms over the open-loop rounds (gRPC arm, then REST arm),
# as the bucket bound under which 50% and 99% of the calls finished.
python3 - "$work" "$rounds" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def delta(a, b):
    return {s: {le: b[s][le] - a.get(s, {}).get(le, 0) for le in b[s]} for s in b}
def bound(buckets, q):
    items = sorted(((float("inf") if le == "+Inf" else float(le)), n) for le, n in buckets.items())
    total = items[-1][1]
    for le, n in items:
        if total and n >= q * total:
            return le * 1000
for arm, (before, after) in (("grpc", ("server-grpc-{}-before", "server-grpc-{}-after")), ("rest", ("server-grpc-{}-after", "server-rest-{}-after"))):
    summed = {}
    for n in range(1, rounds + 1):
        d = delta(json.load(open(f"{work}/{before.format(n)}.json")), json.load(open(f"{work}/{after.format(n)}.json")))
        for s, b in d.items():
            for le, c in b.items():
                summed.setdefault(s, {}).setdefault(le, 0)
                summed[s][le] += c
    for s, b in sorted(summed.items()):
        if max(b.values(), default=0) > 0:
            print(f"server-side {arm} {s}: calls={int(max(b.values()))} p50_ms<={bound(b, 0.5)} p99_ms<={bound(b, 0.99)}")
PY
