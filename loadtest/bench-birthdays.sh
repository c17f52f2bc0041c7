#!/usr/bin/env bash
# The birthday sweep over a million members (issue 16), beside a segment refresh over the same
# members, in one run on this machine:
#   1. generate N members (loadtest/gen-members.py; cached, it is deterministic) and import them
#      into a fresh data directory with `memberd import`;
#   2. start memberd (release, --target all, embedded store and bus; the scheduled sweeps far
#      apart, so only the measured ones run) and save the segment of bench-members.sh;
#   3. R rounds, the two arms interleaved (ABBA): a segment refresh (POST .../refresh) and a
#      birthday sweep (a fresh birthday campaign approved, POST .../birthday-sweeps, then ended)
#      each timed by memberd (took_ms) and by the HTTP call (wall);
#   4. medians, members per second (the members of the tenant over the time taken) and the
#      ratio sweep / refresh.
# gen-members.py gives birthdays on 84 (month, day) pairs only, about 11,900 members each; the
# campaign's days_before is chosen so that the two days a sweep looks at (yesterday and today,
# shifted) hold exactly one of those pairs: each sweep rewards about 11,900 members, four times a
# real day's share of a million members (about 2,740).
# Usage: loadtest/bench-birthdays.sh [members=1000000] [rounds=5]
# Needs python3 and curl. Figures go to stdout and, as JSON, to <target dir>/bench/birthdays.json.
# Loopback only; every phase is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
members=${1:-1000000} rounds=${2:-5}
target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/bench
mkdir -p "$out_dir"
tenant=benchco
segment=campaign
step() { printf '\n==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench-birthdays: $tool is missing" >&2; exit 1; }
done

# The segment of bench-members.sh: its refresh reads every member of the tenant.
cities='"上海", "北京", "杭州"'
query="{\"all\": [
  {\"any\": [{\"tag\": \"vip\"}, {\"tag\": \"student\"}]},
  {\"attribute\": {\"name\": \"city\", \"in\": [$cities]}},
  {\"not\": {\"tag\": \"new\"}},
  {\"consent\": \"sms\"},
  {\"registered\": {\"within_days\": 365}}
]}"

step "building memberd (release)"
cargo build --release --locked -p memberd
memberd_bin=$target_dir/release/memberd

source loadtest/memberd.sh
work=$(mktemp -d)
cleanup() {
  stop_memberd
  rm -rf "$work"
}
trap cleanup EXIT

members_csv "$members" "$out_dir"
data=$work/data
step "memberd import of $members members into a fresh data directory"
t0=$(now)
"$memberd_bin" --data-dir "$data" import "$csv" --tenant "$tenant" --mapping "$csv.mapping.toml" \
  --report "$work/import-report.csv" >"$work/import.txt" 2>&1 || { cat "$work/import.txt" >&2; exit 1; }
tail -n 1 "$work/import.txt"
echo "memberd import: $(since "$t0") s"
sync

step "starting memberd (release, --target all, embedded store and bus) on $data"
memberd_start_secs=300
start_memberd "$data" "$out_dir/memberd-birthdays.log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
  MEMBERD_MEMBER__REVIEW_INTERVAL_SECS=0 MEMBERD_GATEWAY__REQUEST_TIMEOUT_MS=300000 \
  MEMBERD_CAMPAIGN__SWEEP_INTERVAL_SECS=86400 \
  MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000
admin=$LOADGEN_TOKEN
json=(-H 'Content-Type: application/json')
# post PATH KEY BODY [TOKEN]: POSTs and prints the reply, or fails loudly.
post() {
  curl -sf --max-time 300 -X POST "http://$http$1" -H "Authorization: Bearer ${4:-$admin}" \
    -H "Idempotency-Key: $2" "${json[@]}" -d "$3"
}
post /v1/tenants t1 "{\"id\":\"$tenant\",\"name\":\"Bench Co\"}" >/dev/null
checker_password="Approves-2027-bench"
post "/v1/tenants/$tenant/staff" c1 \
  "{\"username\":\"checker\",\"password\":\"$checker_password\",\"roles\":[{\"role\":\"tenant_admin\"}]}" >/dev/null
checker=$(curl -sf -X POST "http://$http/v1/auth/login" "${json[@]}" \
  -d "{\"tenant\":\"$tenant\",\"username\":\"checker\",\"password\":\"$checker_password\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
curl -sf -X PUT "http://$http/v1/tenants/$tenant/segments/$segment" -H "Authorization: Bearer $admin" \
  -H 'Idempotency-Key: s1' "${json[@]}" -d "{\"name\":\"SMS campaign\",\"query\":$query}" >/dev/null

# days_before: the first shift from today (UTC) that puts exactly one generated birthday in
# the sweep's two days. gen-members.py's (month, day) pairs are those with day <= 28 and
# month - day divisible by 4.
days_before=$(python3 - <<'PY'
import datetime
today = datetime.datetime.now(datetime.timezone.utc).date()
held = lambda d: d.day <= 28 and (d.month - d.day) % 4 == 0
for shift in range(31):
    day = today + datetime.timedelta(days=shift)
    if held(day) != held(day - datetime.timedelta(days=1)):
        print(shift)
        break
PY
)
echo "birthday campaigns greet members $days_before days ahead"

refresh() {
  local i=$1 wall
  wall=$(curl -sf --max-time 300 -o "$work/refresh-$i.json" -w '%{time_total}' -X POST \
    "http://$http/v1/tenants/$tenant/segments/$segment/refresh" -H "Authorization: Bearer $admin" \
    -H "Idempotency-Key: r$i-$$")
  python3 - "$work/refresh-$i.json" "$wall" "$i" <<'PY' | tee -a "$work/rounds.txt"
import json, sys
r = json.load(open(sys.argv[1]))
print(f"refresh round={sys.argv[3]} took_ms={r['took_ms']} wall_ms={float(sys.argv[2]) * 1000:.0f} "
      f"scanned={r['scanned']} count={r['count']}")
PY
}

sweep() {
  local i=$1 id="BDAY-$1" wall
  local campaign="{\"id\":\"$id\",\"name\":\"Happy birthday $i\",\"audience\":{\"type\":\"everyone\"},
    \"variants\":[{\"id\":\"gift\",\"weight\":1,\"reward\":{\"type\":\"points\",\"points\":10}}],
    \"schedule\":{\"starts\":\"2020-01-01\",\"time_zone\":\"UTC\"},
    \"trigger\":{\"type\":\"birthday\",\"days_before\":$days_before}}"
  post "/v1/tenants/$tenant/campaigns" "save-$id" "$campaign" >/dev/null
  post "/v1/tenants/$tenant/campaigns/$id/submit" "submit-$id" '{}' >/dev/null
  post "/v1/tenants/$tenant/campaigns/$id/approval" "approve-$id" '{}' "$checker" >/dev/null
  wall=$(curl -sf --max-time 600 -o "$work/sweep-$i.json" -w '%{time_total}' -X POST \
    "http://$http/v1/tenants/$tenant/birthday-sweeps" -H "Authorization: Bearer $admin" \
    -H "Idempotency-Key: b$i-$$")
  # Ended, so the next round's sweep looks at its own campaign only.
  post "/v1/tenants/$tenant/campaigns/$id/end" "end-$id" '{}' >/dev/null
  python3 - "$work/sweep-$i.json" "$wall" "$i" <<'PY' | tee -a "$work/rounds.txt"
import json, sys
r = json.load(open(sys.argv[1]))
print(f"sweep round={sys.argv[3]} took_ms={r['took_ms']} wall_ms={float(sys.argv[2]) * 1000:.0f} "
      f"campaigns={r['campaigns']} birthdays={r['members']} rewarded={r['rewarded']}")
PY
}

step "$rounds rounds, refresh and sweep interleaved (ABBA); load average before: $(load)"
for i in $(seq "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then refresh "$i"; sweep "$i"; else sweep "$i"; refresh "$i"; fi
done
echo "load average after: $(load)"

python3 - "$work/rounds.txt" "$members" "$out_dir/birthdays.json" <<'PY'
import json, statistics, sys
rows = [dict(kv.split("=") for kv in line.split()[1:]) | {"arm": line.split()[0]}
        for line in open(sys.argv[1])]
members = int(sys.argv[2])
def med(arm, field):
    return statistics.median(float(r[field]) for r in rows if r["arm"] == arm)
refresh_ms, sweep_ms = med("refresh", "took_ms"), med("sweep", "took_ms")
refresh_rate, sweep_rate = members / refresh_ms * 1000, members / sweep_ms * 1000
out = {
    "members": members,
    "refresh_took_ms_median": refresh_ms, "refresh_wall_ms_median": med("refresh", "wall_ms"),
    "sweep_took_ms_median": sweep_ms, "sweep_wall_ms_median": med("sweep", "wall_ms"),
    "birthdays_per_sweep_median": med("sweep", "birthdays"),
    "refresh_members_per_s": round(refresh_rate), "sweep_members_per_s": round(sweep_rate),
    "sweep_over_refresh": round(sweep_rate / refresh_rate, 2),
    "rounds": rows,
}
json.dump(out, open(sys.argv[3], "w"), indent=1)
print(f"\nmedians over {len([r for r in rows if r['arm'] == 'sweep'])} rounds of {members} members:")
print(f"  refresh  took_ms={refresh_ms:.0f} wall_ms={out['refresh_wall_ms_median']:.0f}  "
      f"{refresh_rate:,.0f} members/s")
print(f"  sweep    took_ms={sweep_ms:.0f} wall_ms={out['sweep_wall_ms_median']:.0f}  "
      f"{sweep_rate:,.0f} members/s ({out['birthdays_per_sweep_median']:.0f} birthdays rewarded each)")
print(f"  sweep / refresh = {out['sweep_over_refresh']} (target: at least 0.5)")
PY
