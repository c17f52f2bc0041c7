# Sourced by the benchmark scripts: start and stop a release memberd on loopback ports.

# The platform administrator's password on the throwaway data directories of benchmarks.
bench_admin_password="bench-only-passphrase"

# start_memberd DATA_DIR LOG [VAR=VALUE ...]: starts memberd (the binary $memberd_bin, by default
# target/release/memberd) on DATA_DIR with the extra
# environment, sets memberd_pid, grpc and http (its addresses) once it listens, logs in as the
# platform administrator and exports LOADGEN_TOKEN (memberd checks every gRPC caller), or exits.
# It waits up to $memberd_start_secs (default 10) seconds for memberd to listen.
start_memberd() {
  local dir=$1 log=$2
  shift 2
  env MEMBERD_HTTP_ADDR=127.0.0.1:0 MEMBERD_GRPC_ADDR=127.0.0.1:0 \
    MEMBERD_IDENTITY__BOOTSTRAP_PASSWORD="$bench_admin_password" RUST_LOG=warn "$@" \
    "${memberd_bin:-target/release/memberd}" --data-dir "$dir" 2>"$log" &
  memberd_pid=$!
  grpc=""
  for _ in $(seq $((${memberd_start_secs:-10} * 10))); do
    grpc=$(sed -n 's/^memberd: grpc listening on //p' "$log")
    http=$(sed -n 's/^memberd: http listening on //p' "$log")
    if [ -n "$grpc" ] && [[ " $* " == *" MEMBERD_TARGET=ledger "* ]]; then
      # The ledger alone has no gateway to log in at, and checks no caller.
      export LOADGEN_TOKEN=""
      return 0
    fi
    if [ -n "$grpc" ]; then
      # A few tries: on a cluster still busy with the migration just applied, the first
      # login can time out.
      local reply="" try
      for try in 1 2 3 4 5; do
        reply=$(curl -s -X POST "http://$http/v1/auth/login" \
          -H 'Content-Type: application/json' \
          -d "{\"tenant\":\"*\",\"username\":\"admin\",\"password\":\"$bench_admin_password\"}")
        LOADGEN_TOKEN=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' \
          <<<"$reply" 2>/dev/null) && break
        LOADGEN_TOKEN=""
        sleep "$try"
      done
      if [ -z "$LOADGEN_TOKEN" ]; then
        echo "could not log in to memberd at $http: $reply" >&2
        exit 1
      fi
      export LOADGEN_TOKEN
      return 0
    fi
    kill -0 "$memberd_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "memberd did not start; see $log" >&2
  exit 1
}

# stop_memberd: stops the memberd start_memberd started, if any.
stop_memberd() {
  if [ -n "${memberd_pid:-}" ]; then
    kill "$memberd_pid" 2>/dev/null || true
    wait "$memberd_pid" 2>/dev/null || true
  fi
  memberd_pid=""
}

# partner_key HTTP ADMIN_TOKEN: creates the tenant $tenant and prints a new API key of it (role
# partner).
partner_key() {
  local http=$1 admin=$2
  curl -sf -X POST "http://$http/v1/tenants" -H "Authorization: Bearer $admin" -H 'Idempotency-Key: t1' \
    -H 'Content-Type: application/json' -d "{\"id\":\"$tenant\",\"name\":\"Bench Co\"}" >/dev/null
  curl -sf -X POST "http://$http/v1/tenants/$tenant/api-keys" -H "Authorization: Bearer $admin" -H 'Idempotency-Key: k1' \
    -H 'Content-Type: application/json' -d '{"name":"till","roles":["partner"]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])'
}

# members_csv N OUT_DIR: sets csv to N generated members (loadtest/gen-members.py, with the
# mapping file beside it), generating them only when that file is missing: the generator is
# deterministic, so the file is cached by its hash and N.
members_csv() {
  local n=$1 dir=$2 t0
  csv=$dir/members-$n-$(sha256sum loadtest/gen-members.py | cut -c1-12).csv
  if [ -s "$csv" ] && [ -s "$csv.mapping.toml" ]; then
    printf '\n==> members: reusing %s (gen-members.py is deterministic)\n' "$csv" >&2
    return 0
  fi
  printf '\n==> members: generating %s into %s\n' "$n" "$csv" >&2
  t0=$(date +%s.%N)
  python3 loadtest/gen-members.py "$n" "$csv.tmp"
  mv "$csv.tmp.mapping.toml" "$csv.mapping.toml"
  mv "$csv.tmp" "$csv"
  echo "generated in $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)") s"
}

# imported_memberd N LOG: N generated members (members_csv, cached in $out_dir) imported into
# a fresh $work/data with `memberd import`, then memberd started on it (release, --target all,
# embedded store and bus, no rate limits; its log in LOG) and the tenant $tenant created;
# sets admin (the platform administrator's token) and json (curl's headers as them).
imported_memberd() {
  local n=$1 log=$2
  members_csv "$n" "$out_dir"
  printf '\n==> memberd import of %s members\n' "$n" >&2
  "$memberd_bin" --data-dir "$work/data" import "$csv" --tenant "$tenant" --mapping "$csv.mapping.toml" \
    --report "$work/import-report.csv" >"$work/import.txt" 2>&1 || { cat "$work/import.txt" >&2; exit 1; }
  tail -n 1 "$work/import.txt"
  sync
  printf '\n==> starting memberd (release, --target all, embedded store and bus)\n' >&2
  memberd_start_secs=120
  start_memberd "$work/data" "$log" MEMBERD_TARGET=all MEMBERD_EVENTS__BUS=embedded \
    MEMBERD_MEMBER__REVIEW_INTERVAL_SECS=0 \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_TENANT=1000000000 \
    MEMBERD_GATEWAY__RATE_LIMITS__PER_API_KEY=1000000000
  admin=$LOADGEN_TOKEN
  json=(-H 'Content-Type: application/json' -H "Authorization: Bearer $admin")
  curl -sf -X POST "http://$http/v1/tenants" "${json[@]}" -H 'Idempotency-Key: t1' \
    -d "{\"id\":\"$tenant\",\"name\":\"Bench Co\"}" >/dev/null
}
