#!/usr/bin/env bash
# Two memberd builds on the same imported members, alternated in one run, to show what a change
# to the member service does (bench-members.sh compares memberd with PostgreSQL instead). Each
# arm of each round starts from a fresh copy of DATA_DIR, then: the segment of
# bench-members.sh refreshed 3 times (took_ms and memberd's CPU time), and C clients reading
# masked profiles for S seconds (loadgen profile-read; reads/s, percentiles, memberd's CPU
# time per read).
# Usage: loadtest/ab-members.sh BEFORE_BIN AFTER_BIN DATA_DIR [members=1000000] [rounds=2]
#          [seconds=15] [clients=32]
# DATA_DIR: a data directory made by `memberd --data-dir DATA_DIR import FILE --tenant benchco
# --mapping FILE.mapping.toml` from `loadtest/gen-members.py MEMBERS FILE`; it is only copied.
# Builds nothing: copy each build's target/release/memberd aside first. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 pristine=$3 members=${4:-1000000} rounds=${5:-2} secs=${6:-15} clients=${7:-32}
target_dir=${CARGO_TARGET_DIR:-target}
loadgen=$target_dir/release/loadgen
[ -x "$loadgen" ] || cargo build --release --locked -p loyalty-loadtest
[ -d "$pristine/member" ] || { echo "ab-members: $pristine holds no imported members" >&2; exit 1; }
tenant=benchco
source loadtest/memberd.sh
memberd_start_secs=300
work=$(mktemp -d)
trap 'stop_memberd; rm -rf "$work"' EXIT
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
minus() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.2f}')" "$@"; }
query='{"all": [{"any": [{"tag": "vip"}, {"tag": "student"}]},
  {"attribute": {"name": "city", "in": ["上海", "北京", "杭州"]}}, {"not": {"tag": "new"}},
  {"consent": "sms"}, {"registered": {"within_days": 365}}]}'
json=(-H 'Content-Type: application/json')

for round in $(seq "$rounds"); do
  for arm in before after; do
    memberd_bin=$before
    [ "$arm" = after ] && memberd_bin=$after
    rm -rf "$work/data"
    cp -a "$pristine" "$work/data"
    sync
    start_memberd "$work/data" "$work/memberd.log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
      MEMBERD_MEMBER__REVIEW_INTERVAL_SECS=0 MEMBERD_GATEWAY__REQUEST_TIMEOUT_MS=300000 \
      MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000 \
      MEMBERD_GATEWAY__RATE_LIMITS__PER_API_KEY=1000000000
    admin=$LOADGEN_TOKEN
    curl -sf -X POST "http://$http/v1/tenants" -H "Authorization: Bearer $admin" \
      -H 'Idempotency-Key: t1' "${json[@]}" -d "{\"id\":\"$tenant\",\"name\":\"Bench Co\"}" >/dev/null
    partner=$(curl -sf -X POST "http://$http/v1/tenants/$tenant/api-keys" \
      -H "Authorization: Bearer $admin" -H 'Idempotency-Key: k1' "${json[@]}" \
      -d '{"name":"till","roles":["partner"]}' |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
    curl -sf -X PUT "http://$http/v1/tenants/$tenant/segments/campaign" \
      -H "Authorization: Bearer $admin" -H 'Idempotency-Key: s1' "${json[@]}" \
      -d "{\"name\":\"SMS campaign\",\"query\":$query}" >/dev/null
    for i in 1 2 3; do
      cpu0=$(cpu_of "$memberd_pid")
      took=$(curl -sf --max-time 300 -X POST "http://$http/v1/tenants/$tenant/segments/campaign/refresh" \
        -H "Authorization: Bearer $admin" -H "Idempotency-Key: r$i" |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["took_ms"], r["count"])')
      echo "round=$round arm=$arm refresh=$i took_ms=${took% *} count=${took#* }" \
        "cpu_s=$(minus "$(cpu_of "$memberd_pid")" "$cpu0") load=$(cut -d' ' -f1 /proc/loadavg)"
    done
    cpu0=$(cpu_of "$memberd_pid")
    line=$(LOADGEN_TOKEN=$partner "$loadgen" bench --api rest --target "http://$http" \
      --tenant "$tenant" --phases profile-read --members "$members" --clients "$clients" \
      --seconds "$secs" 2>"$work/loadgen.err") || { cat "$work/loadgen.err" >&2; exit 1; }
    cpu=$(minus "$(cpu_of "$memberd_pid")" "$cpu0")
    ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$line")
    echo "round=$round arm=$arm $line memberd_cpu_us_per_read=$(python3 -c \
      "print(round(float('$cpu') * 1e6 / max($ops, 1)))") load=$(cut -d' ' -f1 /proc/loadavg)"
    stop_memberd
  done
done
