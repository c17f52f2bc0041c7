#!/usr/bin/env bash
# The campaign service at the till and in a flash sale (issue 16), in one run on this machine,
# each beside the PostgreSQL baseline a retail IT team would build first:
#   1. N generated members imported into a fresh data directory (loadtest/gen-members.py,
#      cached), memberd started (release, --target all, embedded store and bus), a coupon
#      template TILL (2.00 off, many uses per code) with one coupon issued to every member,
#      and a flash sale HOT that no run sells out;
#   2. R interleaved rounds of the till's checkout: memberd, a closed loop of C clients each
#      sending ValidateCart then Redeem of a random member's coupon over gRPC (a fresh
#      redemption id per call), S seconds; then PostgreSQL, pgbench with C clients for S
#      seconds of the same redemption as one transaction (`SELECT ... FOR UPDATE` on the code
#      and the template's counters, the counters moved, the redemption inserted);
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

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi; }
# PostgreSQL: the local server, or Debian's installed and started for this run (and stopped).
started_cluster=""
if ! pg_isready -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v pgbench >/dev/null 2>&1; then
    step "installing PostgreSQL (Debian: postgresql, postgresql-contrib)"
    apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
  fi
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  started_cluster=$ver
  trap 'pg_ctlcluster --skip-systemctl-redirect "$started_cluster" main stop || true' EXIT
  for _ in $(seq 1 50); do pg_isready -q && break; sleep 0.2; done
fi
for tool in python3 curl psql pgbench; do
  command -v "$tool" >/dev/null || {
    echo "bench-campaign: $tool is missing (Debian: apt-get install postgresql postgresql-contrib curl python3)" >&2
    exit 1
  }
done
as_pg psql -d postgres -qAtc 'SELECT 1' >/dev/null || {
  echo "bench-campaign: no PostgreSQL answers on its local socket for the postgres user" >&2
  exit 1
}

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
  [ -z "$started_cluster" ] || pg_ctlcluster --skip-systemctl-redirect "$started_cluster" main stop || true
}
trap cleanup EXIT

members_csv "$members" "$out_dir"
data=$work/data
step "memberd import of $members members"
"$memberd_bin" --data-dir "$data" import "$csv" --tenant "$tenant" --mapping "$csv.mapping.toml" \
  --report "$work/import-report.csv" >"$work/import.txt" 2>&1 || { cat "$work/import.txt" >&2; exit 1; }
tail -n 1 "$work/import.txt"
sync

step "starting memberd (release, --target all, embedded store and bus)"
memberd_start_secs=120
start_memberd "$data" "$out_dir/memberd-campaign.log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
  MEMBERD_MEMBER__REVIEW_INTERVAL_SECS=0 \
  MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000 \
  MEMBERD_GATEWAY__RATE_LIMITS__PER_API_KEY=1000000000
admin=$LOADGEN_TOKEN
json=(-H 'Content-Type: application/json' -H "Authorization: Bearer $admin")
curl -sf -X POST "http://$http/v1/tenants" "${json[@]}" -H 'Idempotency-Key: t1' \
  -d "{\"id\":\"$tenant\",\"name\":\"Bench Co\"}" >/dev/null
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
# round WORKLOAD N LOADGEN_ARGS...: memberd's closed loop of WORKLOAD, then pgbench running
# $work/WORKLOAD.sql, both with $clients clients for $secs s; one line each in rounds.txt.
round() {
  local workload=$1 n=$2 tps lat
  shift 2
  step "round $n of $rounds: memberd $workload, $clients clients, $secs s (load average $(load))"
  "$loadgen" bench --target "http://$grpc" --tenant "$tenant" --phases "$workload" "$@" \
    --members "$members" --clients "$clients" --seconds "$secs" \
    --json "$work/memberd-$workload-$n.json" | tee -a "$work/rounds.txt"
  step "round $n of $rounds: PostgreSQL $workload, $clients clients, $secs s (load average $(load))"
  as_pg pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" \
    -f "$work/$workload.sql" "$db" >"$work/pgbench-$workload-$n.txt" 2>&1 ||
    { cat "$work/pgbench-$workload-$n.txt" >&2; exit 1; }
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench-$workload-$n.txt")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$work/pgbench-$workload-$n.txt")
  echo "pg-$workload round=$n throughput_per_s=$tps latency_avg_ms=$lat" | tee -a "$work/rounds.txt"
}
for n in $(seq 1 "$rounds"); do round redeem "$n" --template TILL; done
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
for name, pg_name in (("redeem", "pg-redeem"), ("claim", "pg-claim")):
    mem = [fields(r) for r in rows if r[0] == f"phase={name}"]
    pg = [fields(r) for r in rows if r[0] == pg_name]
    m = statistics.median(float(r["throughput_per_s"]) for r in mem)
    p = statistics.median(float(r["throughput_per_s"]) for r in pg)
    p99 = statistics.median(float(r["p99_ms"]) for r in mem)
    print(f"memberd {name}/s median={m:.0f} rounds={[round(float(r['throughput_per_s'])) for r in mem]} p99_ms median={p99:.1f}")
    print(f"pg {name}/s median={p:.0f} rounds={[round(float(r['throughput_per_s'])) for r in pg]}")
    print(f"ratio {name} memberd/pg={m / p:.2f}")
PY
