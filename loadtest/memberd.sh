# Sourced by the benchmark scripts: start and stop a release memberd on loopback ports.

# start_memberd DATA_DIR LOG [VAR=VALUE ...]: starts memberd on DATA_DIR with the extra
# environment, sets memberd_pid, grpc and http (its addresses) once it listens, or exits.
start_memberd() {
  local dir=$1 log=$2
  shift 2
  env MEMBERD_HTTP_ADDR=127.0.0.1:0 MEMBERD_GRPC_ADDR=127.0.0.1:0 \
    RUST_LOG=warn "$@" \
    target/release/memberd --data-dir "$dir" 2>"$log" &
  memberd_pid=$!
  grpc=""
  for _ in $(seq 100); do
    grpc=$(sed -n 's/^memberd: grpc listening on //p' "$log")
    http=$(sed -n 's/^memberd: http listening on //p' "$log")
    [ -n "$grpc" ] && return 0
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
