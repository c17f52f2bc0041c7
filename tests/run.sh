#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit, property, integration,
# end-to-end and crash tests. This is the README's test command; .ci/run calls it.
# It installs what it needs when missing, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests need, by the command that must exist.
need_debian() {
  local missing=()
  while [ $# -gt 0 ]; do
    # type -P: a program on PATH, not a shell builtin (kill is both).
    type -P "$1" >/dev/null || missing+=("$2")
    shift 2
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
# A C compiler for crates with build scripts that compile C, the NATS server the event tests
# start (each on its own free port, with JetStream), and the Redis server the shared rate-limit
# tests start (likewise), and kill (procps), which the crash tests send signals with.
need_debian cc gcc nats-server nats-server redis-server redis-server redis-cli redis-tools kill procps

# A one-off build gains nothing from incremental caches, which roughly double the target's size.
export CARGO_INCREMENTAL=0

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The benchmark-only build without access checks (loadtest/bench-rest-auth.sh) must not rot.
cargo clippy -p memberd --features bench-unguarded --locked -- -D warnings

step "cargo test (unit, property, integration, end-to-end, crash)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# The ScyllaDB conformance suite (services/scylla/tests/conformance_*.rs) is built and run
# above: each behaviour against the embedded adapter always, against ScyllaDB only with a
# cluster to talk to.
if [ -n "${SCYLLA_NODES:-}" ]; then
  step "ScyllaDB conformance suite: ran against ${SCYLLA_NODES}"
else
  step "ScyllaDB conformance suite: its ScyllaDB half was SKIPPED: SCYLLA_NODES is not set \
(no ScyllaDB cluster on this machine); set SCYLLA_NODES=host:port[,host:port] to run it"
fi
