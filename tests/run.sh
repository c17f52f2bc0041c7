#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, lints, unit, property, integration,
# end-to-end and crash tests. This is the README's test command; .ci/run calls it.
# It installs what it needs when missing, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Installs the Debian packages of the commands missing, given as pairs: command, package.
# Returns non-zero, saying so, when they cannot be installed.
try_debian() {
  local missing=()
  while [ $# -gt 0 ]; do
    # type -P: a program on PATH, not a shell builtin (kill is both).
    type -P "$1" >/dev/null || missing+=("$2")
    shift 2
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } ||
    { echo "could not install ${missing[*]}" >&2; return 1; }
}

# The same for packages every run needs: a failure stops the run.
need_debian() { try_debian "$@" || exit 1; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
# A C compiler for crates with build scripts that compile C, the NATS server the event tests
# start (each on its own free port, with JetStream), and the Redis server the shared rate-limit
# tests start (likewise), kill (procps), which the crash tests send signals with, HAProxy, the
# global load balancer of the two-region drill, and unzip, which unpacks Helm for the
# Kubernetes checks.
need_debian cc gcc nats-server nats-server redis-server redis-server redis-cli redis-tools kill procps \
  haproxy haproxy \
  unzip unzip

# A one-off build gains nothing from incremental caches, which roughly double the target's size.
export CARGO_INCREMENTAL=0

# rustfmt and clippy are toolchain components: where one is missing it cannot be fetched
# here, so the run says so plainly and goes on with the rest.
missing_components=()
if cargo fmt --version >/dev/null 2>&1; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
else
  missing_components+=(rustfmt)
  step "cargo fmt --check: SKIPPED: rustfmt is not installed (rustup component add rustfmt)"
fi

if cargo clippy --version >/dev/null 2>&1; then
  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # The benchmark-only build without access checks (loadtest/bench-rest-auth.sh) must not rot.
  cargo clippy -p memberd --features bench-unguarded --locked -- -D warnings
else
  missing_components+=(clippy)
  step "cargo clippy: SKIPPED: clippy is not installed (rustup component add clippy)"
fi

# The CQL cluster the ScyllaDB adapters are tested on (tests/cql/cluster.sh): a Cassandra 5.0
# node on a loopback address of its own, unless SCYLLA_NODES names a cluster already (a
# ScyllaDB one, say). The two-datacenter drill starts a cluster of its own where Java and
# Maven are (CQL_TWO_DATACENTERS). Only what this run started is stopped at the end.
cql_skip=""
cql_started=""
have_java_and_maven() { command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; }
if ! have_java_and_maven; then
  # Debian's JDK and Maven; where they cannot be installed, the CQL tests say why they skip.
  try_debian java openjdk-17-jdk-headless mvn maven || true
fi
if have_java_and_maven; then
  export CQL_TWO_DATACENTERS=1
fi
if [ -n "${SCYLLA_NODES:-}" ]; then
  step "CQL tests: against SCYLLA_NODES=${SCYLLA_NODES} (flavour ${SCYLLA_FLAVOUR:-scylladb})"
elif have_java_and_maven; then
  cql_name="suite"
  if bash tests/cql/cluster.sh status "$cql_name" >/dev/null 2>&1; then
    step "CQL tests: the Cassandra node of an earlier run still answers; using it"
  else
    step "starting a Cassandra 5.0 node for the CQL tests (tests/cql/cluster.sh)"
    CQL_AUDIT=1 bash tests/cql/cluster.sh start "$cql_name" one >/dev/null
    cql_started="$cql_name"
    trap 'bash tests/cql/cluster.sh stop "$cql_started"' EXIT
  fi
  # SCYLLA_NODES, SCYLLA_DATACENTER, SCYLLA_FLAVOUR, CQL_AUDIT_LOGS
  set -a
  # shellcheck disable=SC1090
  . "target/cql/$cql_name/env"
  set +a
  bash tests/cql/cluster.sh status "$cql_name"
else
  cql_skip="Java 17 or Maven is missing (java: $(command -v java || echo none), mvn: \
$(command -v mvn || echo none)) and could not be installed; the CQL tests need them to run Cassandra"
fi

step "cargo test (unit, property, integration, end-to-end, crash)"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# The CQL half of the tests (the conformance suite, migrations, the relay, memberd end to
# end on CQL, the two-datacenter drill) ran above against the cluster, or said why not.
if [ -n "${CQL_AUDIT_LOGS:-}" ]; then
  step "which of the adapters' statements ran on the Cassandra node"
  # shellcheck disable=SC2086
  cargo run -q -p memberd --locked --example statement_coverage -- --require $CQL_AUDIT_LOGS
fi

# The console in a real browser: headless Chromium from Debian, driven by Playwright, with
# axe-core in every screen.
step "console browser tests (tests/console/run.sh)"
bash tests/console/run.sh

# The deployment path (after the statement coverage, so that only the test suite's statements
# count there): the chart, image and manifests without a cluster, then the chart's render
# booted as local processes on the CQL cluster.
step "Kubernetes checks (tests/k8s/check.sh)"
bash tests/k8s/check.sh
if [ -n "${SCYLLA_NODES:-}" ]; then
  step "the rendered chart boots (tests/k8s/boot.sh)"
  bash tests/k8s/boot.sh
else
  step "the rendered chart boots (tests/k8s/boot.sh): SKIPPED: it needs the CQL cluster"
fi

if [ -n "$cql_skip" ]; then
  step "CQL tests: SKIPPED: $cql_skip"
elif [ -n "$cql_started" ]; then
  step "CQL tests: ran on Cassandra at ${SCYLLA_NODES} (started by this run), and the \
two-datacenter drill on a cluster of its own"
else
  step "CQL tests: ran against ${SCYLLA_NODES}"
fi
if [ ${#missing_components[@]} -gt 0 ]; then
  step "NOT CHECKED: ${missing_components[*]} (toolchain components missing on this machine)"
fi
