#!/usr/bin/env bash
# A real CQL cluster for the test suite: Apache Cassandra 5.0 from Maven Central, run as plain
# JVM processes on loopback addresses of their own. It stands in for ScyllaDB, which cannot be
# installed on the test machines (docs/operations/scylla.md says what it proves and what not).
#
#   tests/cql/cluster.sh start  NAME [one|two-dc|three-dc]  start a cluster, wait for CQL, print its env
#   tests/cql/cluster.sh stop   NAME                stop the processes this script started
#   tests/cql/cluster.sh status NAME                which nodes run and answer
#   tests/cql/cluster.sh kill   NAME NODE           kill -9 one node (a lost datacenter)
#   tests/cql/cluster.sh pause  NAME NODE           SIGSTOP one node (a datacenter cut off)
#   tests/cql/cluster.sh resume NAME NODE           SIGCONT it
#   tests/cql/cluster.sh wait-down NAME SEER NODE   wait until node SEER sees NODE down
#   tests/cql/cluster.sh destroy NAME               stop, then delete its data and logs
#   tests/cql/cluster.sh env    NAME                the cluster's SCYLLA_* settings again
#   tests/cql/cluster.sh nodetool NAME NODE ARGS... nodetool against one node
#   tests/cql/cluster.sh rebuild NAME NODE          bring a killed node back empty, streamed from
#                                                   the other datacenters, then repaired
#
# `one` is a single node in datacenter dc1. `two-dc` is a node in dc1 and one in dc2
# (GossipingPropertyFileSnitch), for the multi-datacenter tests. Node names are dc1, dc2.
# `three-dc` adds dc3: two regions and the witness of their control keyspace (decision 0019).
# There the nodes of dc1 and dc2 keep no hints for each other, and each node runs in a cgroup
# of its own when the machine allows it (root, cgroup v2), for the region drill's cut.
#
# Settings (environment):
#   CQL_HOME       where the resolved artifacts are cached (default ~/.cache/memberd-cql)
#   CQL_STATE      where clusters keep their data, logs and pids (default target/cql)
#   CQL_HEAP_MB    heap per node (default 2048 for one, 1024 each for two-dc: the test suite
#                  makes hundreds of small tables on the one node, each with its memtable)
#   CQL_VERSION    the cassandra-all version (default 5.0.9)
#   CQL_WRITE_TIMEOUT, CQL_CAS_TIMEOUT  the nodes' write and conditional-write timeouts
#                  (default 5000ms each; 2000ms and 1000ms on three-dc, as ScyllaDB's)
#   CQL_AUDIT      1: log every statement the nodes run to logs/audit.log (Cassandra's audit
#                  log), for the check of which statements the test suite ran
#   CQL_CROSS_REGION_HINTS  1: on three-dc, dc1 and dc2 keep hints for each other too (to
#                  measure what they bring back after a cut between the regions)
#   CQL_AUTH       1: clients must log in (PasswordAuthenticator; the default superuser
#                  cassandra/cassandra), for the test of memberd's scylla.user/password
#
# `start` prints lines of the form KEY=value (SCYLLA_NODES, SCYLLA_DATACENTER, and for two-dc
# and three-dc SCYLLA_NODES_DC1, SCYLLA_NODES_DC2, SCYLLA_NODES_DC3, and CQL_CGROUP_DC1..3 when
# the nodes run in cgroups); they are kept in $CQL_STATE/NAME/env to be sourced.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CQL_HOME="${CQL_HOME:-$HOME/.cache/memberd-cql}"
CQL_STATE="${CQL_STATE:-$repo/target/cql}"
CQL_HEAP_MB="${CQL_HEAP_MB:-}"
CQL_VERSION="${CQL_VERSION:-5.0.9}"
CQL_START_TIMEOUT="${CQL_START_TIMEOUT:-240}"

say() { printf '[cql] %s\n' "$*" >&2; }
die() { printf '[cql] error: %s\n' "$*" >&2; exit 1; }

# The comment block at the top of this file, less its first three lines.
usage() { awk 'NR > 4 && /^#/ { sub(/^# ?/, ""); print; next } NR > 4 { exit }' "$0" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# The artifacts: cassandra-all and its runtime dependencies, resolved by Maven once per version.

lib_dir() { echo "$CQL_HOME/cassandra-$CQL_VERSION/lib"; }

resolve_artifacts() {
  local lib; lib="$(lib_dir)"
  if [ -f "$lib/.complete" ]; then return; fi
  command -v java >/dev/null 2>&1 || die "java is missing: install a JDK 17 (Cassandra 5.0 runs on 11 or 17)"
  command -v mvn >/dev/null 2>&1 || die "mvn is missing: install Maven to resolve Cassandra from Maven Central"
  say "resolving org.apache.cassandra:cassandra-all:$CQL_VERSION and its dependencies (once, into $lib)"
  local work; work="$(mktemp -d)"
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>memberd.tests</groupId>
  <artifactId>cql-cluster</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CQL_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$lib"; mkdir -p "$lib"
  if ! (cd "$work" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$lib" >"$work/mvn.log" 2>&1); then
    tail -30 "$work/mvn.log" >&2
    die "Maven could not resolve cassandra-all $CQL_VERSION (log above)"
  fi
  touch "$lib/.complete"
  rm -rf "$work"
}

classpath() {
  local conf="$1" lib; lib="$(lib_dir)"
  # The node's conf directory first: cassandra.yaml, cassandra-rackdc.properties, logback.xml.
  printf '%s' "$conf"
  for jar in "$lib"/*.jar; do printf ':%s' "$jar"; done
}

# ---------------------------------------------------------------------------------------------
# Addresses and ports.

# Whether nothing is bound to host:port (a bind test, not a connect: a refused connect can
# still mean a listener on 0.0.0.0 elsewhere).
port_free() {
  python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
EOF
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Loopback addresses already given to a cluster of this state directory (running or not).
claimed_addresses() {
  cat "$CQL_STATE"/*/*/address 2>/dev/null || true
}

# The next loopback address from 127.0.0.2 on where CQL (9042) and gossip (7000) are free and
# no other cluster of ours has it. Each node has an address of its own, so every node keeps
# the standard ports and a cluster can span "hosts" as in production.
next_address() {
  local taken; taken=" $(claimed_addresses | tr '\n' ' ') $* "
  local c d
  for c in $(seq 0 3); do
    for d in $(seq 2 254); do
      local a="127.0.$c.$d"
      case "$taken" in *" $a "*) continue ;; esac
      if port_free "$a" 9042 && port_free "$a" 7000; then echo "$a"; return; fi
    done
  done
  die "no free loopback address in 127.0.0-3.x for CQL (9042) and gossip (7000)"
}

# ---------------------------------------------------------------------------------------------
# A node: its configuration, start, and whether it answers.

# How long a coordinator waits for a write's replicas (CQL_WRITE_TIMEOUT) and a conditional
# write for its Paxos round (CQL_CAS_TIMEOUT). Three datacenters run the two-region drill,
# whose RTO includes how long the writes under way when a datacenter is lost wait for it:
# there, ScyllaDB's defaults (2 s and 1 s), as in production. Elsewhere 5 s each, so that a
# slow answer on a shared machine of two cores fails no test.
write_timeouts() {
  local default=5000ms cas=5000ms
  if [ "$1" = three-dc ]; then default=2000ms; cas=1000ms; fi
  CQL_WRITE_TIMEOUT="${CQL_WRITE_TIMEOUT:-$default}"
  CQL_CAS_TIMEOUT="${CQL_CAS_TIMEOUT:-$cas}"
}

# The datacenter of the other region, to which a node of a region keeps no hints (three-dc;
# decision 0019): a region cut off from the other goes on coordinating writes that fail there,
# and hints would replay them into the other region when the cut heals, next to what its new
# home wrote meanwhile. CQL_CROSS_REGION_HINTS=1 keeps them, to see what they bring back.
no_hints_to() {
  local topology="$1" dc="$2"
  [ "$topology" = three-dc ] && [ "${CQL_CROSS_REGION_HINTS:-0}" != 1 ] || return 0
  case "$dc" in dc1) echo dc2 ;; dc2) echo dc1 ;; esac
}

write_config() {
  local name="$1" node="$2" dc="$3" address="$4" seeds="$5" dir="$6" no_hints_to="${7:-}"
  mkdir -p "$dir"/{conf,data,commitlog,hints,saved_caches,cdc_raw,logs}
  local authenticator=AllowAllAuthenticator
  if [ "${CQL_AUTH:-0}" = 1 ]; then authenticator=PasswordAuthenticator; fi
  cat >"$dir/conf/cassandra.yaml" <<EOF
# Written by tests/cql/cluster.sh for the test cluster "$name", node $node ($dc).
cluster_name: memberd-test-$name
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: GossipingPropertyFileSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seeds"
listen_address: $address
rpc_address: $address
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
data_file_directories: [$dir/data]
commitlog_directory: $dir/commitlog
hints_directory: $dir/hints
saved_caches_directory: $dir/saved_caches
cdc_raw_directory: $dir/cdc_raw
# As ScyllaDB's default: the commit log is synced every 10 s, and an acknowledged write is
# durable through its replicas, not one node's fsync.
commitlog_sync: periodic
commitlog_sync_period: 10000ms
# Paxos v2: the variant Cassandra recommends for new clusters (fewer round trips per LWT).
paxos_variant: v2
# LWTs on a test machine of two cores wait on each other more than in production; but see
# write_timeouts for three datacenters.
cas_contention_timeout: $CQL_CAS_TIMEOUT
write_request_timeout: $CQL_WRITE_TIMEOUT
read_request_timeout: 5000ms
range_request_timeout: 10000ms
request_timeout: 10000ms
# Small: the test data is small, and several nodes share one machine.
memtable_heap_space: $((CQL_HEAP_MB / 4))MiB
# Every test makes keyspaces of its own: hundreds of small tables. Slabbed memtables take a
# 1 MiB region each, which alone fills a small heap.
memtable_allocation_type: unslabbed_heap_buffers
memtable_offheap_space: $((CQL_HEAP_MB / 4))MiB
file_cache_size: 64MiB
key_cache_size: 16MiB
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 4
concurrent_compactors: 1
compaction_throughput: 0MiB/s
# A single-partition batch of audit records or housekeeping entries may be large (the
# production setting is in docs/operations/scylla.md); warn rather than refuse.
batch_size_warn_threshold: 256KiB
batch_size_fail_threshold: 2048KiB
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
disk_failure_policy: stop
commit_failure_policy: stop
# A node that stops answering is marked down sooner than the default (8), so the tests that
# cut a datacenter off wait less; on loopback, a slow answer is not a lost node.
phi_convict_threshold: 5
hinted_handoff_enabled: true
hinted_handoff_disabled_datacenters: [$no_hints_to]
authenticator: $authenticator
authorizer: AllowAllAuthorizer
dynamic_snitch: true
EOF
  if [ "${CQL_AUDIT:-0}" = 1 ]; then
    cat >>"$dir/conf/cassandra.yaml" <<EOF
# Every statement run (not prepared): which of the adapters' statements the suite ran.
audit_logging_options:
  enabled: true
  logger:
    - class_name: FileAuditLogger
  included_categories: QUERY,DML
EOF
  fi
  cat >"$dir/conf/cassandra-rackdc.properties" <<EOF
dc=$dc
rack=rack1
prefer_local=true
EOF
  cat >"$dir/conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$dir/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="AUDIT" class="ch.qos.logback.core.FileAppender">
    <file>$dir/logs/audit.log</file>
    <encoder><pattern>%msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="org.apache.cassandra.audit" level="INFO" additivity="false">
    <appender-ref ref="AUDIT"/>
  </logger>
</configuration>
EOF
  echo "$address" >"$dir/address"
  echo "$dc" >"$dir/datacenter"
}

# The JVM options Cassandra 5.0 needs on Java 17 (its conf/jvm17-server.options and
# jvm-server.options, less what only matters on big machines), and a heap for a shared box.
jvm_options() {
  local dir="$1" jmx="$2" lib; lib="$(lib_dir)"
  local jamm; jamm="$(ls "$lib"/jamm-*.jar | head -1)"
  cat <<EOF
-Xms${CQL_HEAP_MB}m
-Xmx${CQL_HEAP_MB}m
-XX:MaxDirectMemorySize=512m
-Xss256k
-XX:+UseG1GC
-XX:+ParallelRefProcEnabled
-XX:MaxTenuringThreshold=1
-XX:G1HeapRegionSize=4m
-XX:MaxGCPauseMillis=300
-XX:+ExitOnOutOfMemoryError
-XX:+PerfDisableSharedMem
-XX:ActiveProcessorCount=2
-javaagent:$jamm
-ea
-da:net.openhft...
-Djava.net.preferIPv4Stack=true
-Djdk.attach.allowAttachSelf=true
-Dio.netty.tryReflectionSetAccessible=true
-Dio.netty.allocator.useCacheForAllThreads=true
-Dio.netty.allocator.maxOrder=11
-Dcassandra-foreground=yes
-Dcassandra.config=file://$dir/conf/cassandra.yaml
-Dcassandra.logdir=$dir/logs
-Dcassandra.storagedir=$dir/data
-Dlogback.configurationFile=file://$dir/conf/logback.xml
-Dcassandra.jmx.local.port=$jmx
-Dcassandra.skip_wait_for_gossip_to_settle=0
-Dcassandra.ring_delay_ms=1000
-Dcassandra.superuser_setup_delay_ms=0
-Dcassandra.available_processors=2
-Dcassandra.triggers_dir=$dir/conf
--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED
--add-exports=java.sql/java.sql=ALL-UNNAMED
--add-exports=java.base/java.lang.ref=ALL-UNNAMED
--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED
--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED
--add-opens=java.base/java.lang.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED
--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED
--add-opens=java.base/jdk.internal.math=ALL-UNNAMED
--add-opens=java.base/jdk.internal.module=ALL-UNNAMED
--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED
--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
--add-opens=java.base/java.io=ALL-UNNAMED
--add-opens=java.base/java.lang.reflect=ALL-UNNAMED
--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
--add-opens=java.base/java.lang=ALL-UNNAMED
--add-opens=java.base/java.util=ALL-UNNAMED
--add-opens=java.base/java.nio=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent=ALL-UNNAMED
--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
--add-opens=java.base/java.math=ALL-UNNAMED
--add-opens=java.base/java.net=ALL-UNNAMED
EOF
}

node_pid() {
  local dir="$1"
  [ -f "$dir/pid" ] || return 1
  local pid; pid="$(cat "$dir/pid")"
  # Ours only if the process still runs with this node's configuration: a pid can be reused.
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  case "$cmdline" in
    *"$dir/conf/cassandra.yaml"*) echo "$pid" ;;
    *) return 1 ;;
  esac
}

# Where the machine's cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on a
# hybrid one); nothing when there is none.
cgroup2_root() { awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts; }

# On three-dc, each node runs in a cgroup of its own when the machine lets us make one (root,
# cgroup v2), named in $dir/cgroup (and CQL_CGROUP_DC<n> in the env) relative to the
# hierarchy's root: the region drill can then drop what one node sends another with
# `iptables -m cgroup --path`, a cut between two datacenters while each reaches the third
# (services/memberd/tests/drill/cut.rs). A socket counts as its process's cgroup when it was
# made, so the node joins before it starts. Prints the group's cgroup.procs.
node_cgroup() {
  local dir="$1" root; root="$(cgroup2_root)"
  rm -f "$dir/cgroup"
  [ "$(cat "$(dirname "$dir")/topology" 2>/dev/null)" = three-dc ] || return 0
  [ -n "$root" ] && [ -w "$root" ] || return 0
  local relative
  relative="memberd-cql/$(basename "$(dirname "$dir")")-$(basename "$dir")"
  mkdir -p "$root/$relative" 2>/dev/null && [ -w "$root/$relative/cgroup.procs" ] || return 0
  echo "$relative" >"$dir/cgroup"
  echo "$root/$relative/cgroup.procs"
}

launch_node() {
  local dir="$1"
  local procs; procs="$(node_cgroup "$dir")"
  local jmx; jmx="$(free_port)"
  echo "$jmx" >"$dir/jmx_port"
  local opts=(); mapfile -t opts < <(jvm_options "$dir" "$jmx")
  rm -f "$dir/pid"
  # setsid: the node outlives the shell that started it (tests/run.sh stops it by its pid).
  # The node writes its own pid, just before it becomes java: $! is not it when setsid forks,
  # which it does when the caller leads a process group (a shell with job control on).
  setsid bash -c 'echo $$ >"$0/pid"; [ -z "$1" ] || echo $$ >"$1"; shift; exec "$@"' \
    "$dir" "$procs" java "${opts[@]}" \
    -cp "$(classpath "$dir/conf")" org.apache.cassandra.service.CassandraDaemon \
    >"$dir/logs/stdout.log" 2>&1 </dev/null &
  date +%s.%N >"$dir/started_at"
  # Until the exec, the pid's command line is not yet the node's, and node_pid would call a
  # node that is starting dead.
  local deadline=$((SECONDS + 30)) pid
  until node_pid "$dir" >/dev/null; do
    pid="$(cat "$dir/pid" 2>/dev/null || true)"
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$dir/logs/stdout.log" >&2 2>/dev/null || true
      die "the java process of $dir exited at once (output above, logs: $dir/logs)"
    fi
    [ $SECONDS -lt $deadline ] || die "no java process for $dir within 30s (logs: $dir/logs)"
    sleep 0.1
  done
}

# Whether the node's CQL port accepts a connection.
cql_answers() {
  local address="$1"
  (exec 3<>"/dev/tcp/$address/9042") 2>/dev/null
}

wait_for_cql() {
  local dir="$1" node="$2" address; address="$(cat "$dir/address")"
  local deadline=$((SECONDS + CQL_START_TIMEOUT)) last=-1
  while ! cql_answers "$address"; do
    if ! node_pid "$dir" >/dev/null; then
      tail -40 "$dir/logs/system.log" >&2 2>/dev/null || true
      tail -20 "$dir/logs/stdout.log" >&2 2>/dev/null || true
      die "node $node exited during start-up (logs: $dir/logs)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -40 "$dir/logs/system.log" >&2 2>/dev/null || true
      die "node $node did not answer CQL on $address:9042 within ${CQL_START_TIMEOUT}s (logs: $dir/logs)"
    fi
    local waited=$((SECONDS - deadline + CQL_START_TIMEOUT))
    if [ $((waited / 10)) -ne "$last" ]; then
      last=$((waited / 10))
      say "node $node ($address): starting, ${waited}s"
    fi
    sleep 1
  done
  local started; started="$(cat "$dir/started_at")"
  local took; took="$(python3 -c "import time; print(round(time.time() - $started, 1))")"
  echo "$took" >"$dir/startup_secs"
  local rss; rss="$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$(node_pid "$dir")/status")"
  say "node $node ($address, $(cat "$dir/datacenter")): CQL answers after ${took}s, ${rss} MiB resident"
}

nodetool() {
  local dir="$1"; shift
  local opts=(); mapfile -t opts < <(jvm_options "$dir" 0 | grep -E '^--add|^-Djava.net')
  java "${opts[@]}" -Xmx256m -Dcassandra.config="file://$dir/conf/cassandra.yaml" \
    -Dlogback.configurationFile="file://$dir/conf/logback-tools.xml" \
    -cp "$(classpath "$dir/conf")" org.apache.cassandra.tools.NodeTool \
    -h 127.0.0.1 -p "$(cat "$dir/jmx_port")" "$@"
}

# nodetool with its own logging off.
nodetool_quiet() {
  local dir="$1"; shift
  [ -f "$dir/conf/logback-tools.xml" ] ||
    echo '<configuration><root level="OFF"/></configuration>' >"$dir/conf/logback-tools.xml"
  nodetool "$dir" "$@"
}

# Waits until every node of the cluster sees every other as up (UN in nodetool status).
wait_for_ring() {
  local cluster="$1" count="$2"
  local first; first="$(ls -d "$cluster"/*/ | head -1)"; first="${first%/}"
  local deadline=$((SECONDS + 120))
  while true; do
    local up; up="$(nodetool_quiet "$first" status 2>/dev/null | grep -c '^UN' || true)"
    [ "$up" -ge "$count" ] && return
    [ $SECONDS -ge $deadline ] && die "the ring did not show $count nodes up within 120s"
    sleep 1
  done
}

# ---------------------------------------------------------------------------------------------
# Commands.

cluster_dir() { echo "$CQL_STATE/$1"; }

write_env() {
  local cluster="$1" topology="$2"
  {
    if [ "$topology" = one ]; then
      echo "SCYLLA_NODES=$(cat "$cluster/dc1/address"):9042"
      echo "SCYLLA_DATACENTER=dc1"
    else
      local all=() dir dc
      for dir in "$cluster"/dc*/; do
        dc="$(basename "$dir")"
        all+=("$(cat "$dir/address"):9042")
        echo "SCYLLA_NODES_${dc^^}=$(cat "$dir/address"):9042"
        [ ! -f "$dir/cgroup" ] || echo "CQL_CGROUP_${dc^^}=$(cat "$dir/cgroup")"
      done
      echo "SCYLLA_NODES=$(IFS=,; echo "${all[*]}")"
      echo "SCYLLA_DATACENTER=dc1"
    fi
    echo "CQL_CLUSTER=$(basename "$cluster")"
    # Quoted: a cluster of several nodes has several logs, and the file is sourced.
    echo "CQL_AUDIT_LOGS='$(for n in "$cluster"/*/; do printf '%slogs/audit.log ' "$n"; done | sed 's/ $//')'"
    echo "SCYLLA_FLAVOUR=cassandra"
  } >"$cluster/env"
}

cmd_start() {
  local name="${1:-}" topology="${2:-one}"
  [ -n "$name" ] || usage
  case "$topology" in one|two-dc|three-dc) ;; *) die "topology is one, two-dc or three-dc, not $topology" ;; esac
  local cluster; cluster="$(cluster_dir "$name")"
  if [ -f "$cluster/env" ] && [ "$(cat "$cluster/topology" 2>/dev/null)" = "$topology" ]; then
    local running=1
    for dir in "$cluster"/*/; do node_pid "${dir%/}" >/dev/null || running=0; done
    if [ $running = 1 ]; then
      say "cluster $name already runs"
      cat "$cluster/env"; return
    fi
  fi
  cmd_stop "$name" quiet
  rm -rf "$cluster"; mkdir -p "$cluster"
  echo "$topology" >"$cluster/topology"
  if [ -z "$CQL_HEAP_MB" ]; then
    if [ "$topology" = one ]; then CQL_HEAP_MB=2048; else CQL_HEAP_MB=1024; fi
  fi
  echo "$CQL_HEAP_MB" >"$cluster/heap_mb"
  resolve_artifacts

  write_timeouts "$topology"
  local nodes=(dc1)
  [ "$topology" = two-dc ] && nodes=(dc1 dc2)
  [ "$topology" = three-dc ] && nodes=(dc1 dc2 dc3)
  local addresses=() n
  for n in "${nodes[@]}"; do
    mkdir -p "$cluster/$n"
    local a; a="$(next_address "${addresses[@]}")"
    addresses+=("$a")
    echo "$a" >"$cluster/$n/address"
  done
  # Every node is a seed: none bootstraps, so each starts as soon as it has its tokens.
  local seeds; seeds="$(IFS=,; echo "${addresses[*]}")"
  local i=0
  for n in "${nodes[@]}"; do
    write_config "$name" "$n" "$n" "${addresses[$i]}" "$seeds" "$cluster/$n" \
      "$(no_hints_to "$topology" "$n")"
    i=$((i + 1))
  done
  # One node at a time: two nodes taking tokens at once on an empty ring may collide.
  for n in "${nodes[@]}"; do
    say "starting node $n on $(cat "$cluster/$n/address") (heap ${CQL_HEAP_MB} MiB)"
    launch_node "$cluster/$n"
    wait_for_cql "$cluster/$n" "$n"
  done
  if [ ${#nodes[@]} -gt 1 ]; then
    wait_for_ring "$cluster" ${#nodes[@]}
    say "every datacenter sees the others"
  fi
  write_env "$cluster" "$topology"
  cat "$cluster/env"
}

cmd_stop() {
  local name="${1:-}" quiet="${2:-}"
  [ -n "$name" ] || usage
  local cluster; cluster="$(cluster_dir "$name")"
  [ -d "$cluster" ] || { [ -n "$quiet" ] || say "no cluster $name"; return 0; }
  local dir pids=()
  for dir in "$cluster"/*/; do
    dir="${dir%/}"
    local pid; pid="$(node_pid "$dir")" || continue
    kill "$pid" 2>/dev/null || true
    pids+=("$pid:$dir")
  done
  local entry
  for entry in "${pids[@]}"; do
    local pid="${entry%%:*}" dir="${entry#*:}"
    for _ in $(seq 1 30); do node_pid "$dir" >/dev/null || break; sleep 0.5; done
    if node_pid "$dir" >/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    [ -n "$quiet" ] || say "stopped node $(basename "$dir") (pid $pid)"
  done
  rm -f "$cluster"/*/pid
  # The nodes' cgroups (three-dc), empty now.
  local root; root="$(cgroup2_root)"
  [ -z "$root" ] || rmdir "$root/memberd-cql/$name"-* 2>/dev/null || true
}

cmd_status() {
  local name="${1:-}"; [ -n "$name" ] || usage
  local cluster; cluster="$(cluster_dir "$name")"
  [ -d "$cluster" ] || die "no cluster $name in $CQL_STATE"
  local dir rc=0
  for dir in "$cluster"/*/; do
    dir="${dir%/}"
    local n; n="$(basename "$dir")"
    local a; a="$(cat "$dir/address")"
    if pid="$(node_pid "$dir")"; then
      local rss; rss="$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status")"
      if cql_answers "$a"; then
        echo "$n $a:9042 up (pid $pid, ${rss} MiB resident, started in $(cat "$dir/startup_secs" 2>/dev/null || echo '?')s)"
      else
        echo "$n $a:9042 starting (pid $pid)"; rc=1
      fi
    else
      echo "$n $a:9042 down"; rc=1
    fi
  done
  return $rc
}

cmd_kill() {
  local name="${1:-}" node="${2:-}"
  [ -n "$name" ] && [ -n "$node" ] || usage
  local dir; dir="$(cluster_dir "$name")/$node"
  local pid; pid="$(node_pid "$dir")" || die "node $node of $name is not running"
  kill -9 "$pid"
  while node_pid "$dir" >/dev/null; do sleep 0.1; done
  rm -f "$dir/pid"
  say "killed node $node of $name (pid $pid)"
}

cmd_signal() {
  local signal="$1" name="${2:-}" node="${3:-}"
  [ -n "$name" ] && [ -n "$node" ] || usage
  local dir; dir="$(cluster_dir "$name")/$node"
  local pid; pid="$(node_pid "$dir")" || die "node $node of $name is not running"
  kill -"$signal" "$pid"
  say "sent SIG$signal to node $node of $name (pid $pid)"
}

cmd_wait_down() {
  local name="${1:-}" seer="${2:-}" node="${3:-}"
  [ -n "$name" ] && [ -n "$seer" ] && [ -n "$node" ] || usage
  local cluster; cluster="$(cluster_dir "$name")"
  local address; address="$(cat "$cluster/$node/address")"
  local deadline=$((SECONDS + 90))
  local status
  while true; do
    # Captured, not piped into `grep -q`: grep would leave at the first match while nodetool
    # still writes, and under pipefail nodetool's failed write would hide the match.
    status="$(nodetool_quiet "$cluster/$seer" status 2>/dev/null || true)"
    case $'\n'"$status" in *$'\n'"DN  $address "*) break ;; esac
    [ $SECONDS -ge $deadline ] && die "node $seer did not see $node down within 90s"
    sleep 0.5
  done
  say "node $seer sees $node down"
}

# A lost datacenter's node comes back empty: its old data may hold writes the other datacenter
# never saw (acknowledged at LOCAL_QUORUM, or applied and never acknowledged), and replaying
# them would put them next to what the survivor wrote since. It keeps its identity (its host
# id and tokens in system.local, the ring in system.peers, and the schema), as a machine
# whose data disks were replaced would; a datacenter of new machines joins with
# cassandra.replace_address_first_boot instead. Everything else goes: the data, the commit
# log, the hints it held for others, its Paxos state and its batch log.
cmd_rebuild() {
  local name="${1:-}" node="${2:-}"
  [ -n "$name" ] && [ -n "$node" ] || usage
  local cluster; cluster="$(cluster_dir "$name")"
  local dir="$cluster/$node"
  [ -d "$dir" ] || die "no node $node in cluster $name"
  ! node_pid "$dir" >/dev/null || die "node $node of $name still runs: only a lost node is rebuilt (cluster.sh kill $name $node)"
  local keep
  for keep in "$dir"/data/*/; do
    case "$(basename "$keep")" in
      system_schema) ;;
      system)
        find "$keep" -mindepth 1 -maxdepth 1 ! -name 'local-*' ! -name 'peers-*' \
          ! -name 'peers_v2-*' -exec rm -rf {} + ;;
      *) rm -rf "$keep" ;;
    esac
  done
  rm -rf "$dir"/commitlog/* "$dir"/hints/* "$dir"/saved_caches/* "$dir"/cdc_raw/*
  # No Paxos repair: the node's Paxos state is dropped on purpose (what it had accepted and
  # not committed is the lost region's, acknowledged to nobody), and every ballot after its
  # return is newer than any it forgot. The repair Cassandra runs before a rebuild (a
  # cleanup of every table's ranges) also failed and retried for minutes under the
  # regions' conditional writes.
  grep -q '^skip_paxos_repair_on_topology_change:' "$dir/conf/cassandra.yaml" ||
    echo 'skip_paxos_repair_on_topology_change: true' >>"$dir/conf/cassandra.yaml"
  [ -n "$CQL_HEAP_MB" ] || CQL_HEAP_MB="$(cat "$cluster/heap_mb" 2>/dev/null || echo 1024)"
  say "node $node of $name wiped (identity and schema kept); starting it"
  launch_node "$dir"
  wait_for_cql "$dir" "$node"
  wait_for_ring "$cluster" "$(ls -d "$cluster"/*/ | wc -l)"
  local started=$SECONDS
  # From every other datacenter: the keyspaces of the system's own (tracing, auth) are placed
  # without regard to datacenters, and some of their ranges have no replica in any one.
  nodetool_quiet "$dir" rebuild --exclude-local-dc ||
    die "nodetool rebuild of $node failed (logs: $dir/logs)"
  say "node $node rebuilt from the other datacenters in $((SECONDS - started))s; repairing"
  started=$SECONDS
  # What reached the other datacenters between their streams' snapshots and this node's
  # return, and that no hint carried, is made whole by a full repair of its ranges.
  nodetool_quiet "$dir" repair --full --skip-paxos | sed -n 's/.*repairing keyspace \([^ ]*\) .*/[cql] repairing keyspace \1/p' >&2 ||
    die "nodetool repair of $node failed (logs: $dir/logs)"
  say "node $node repaired in $((SECONDS - started))s"
}

cmd_destroy() {
  local name="${1:-}"; [ -n "$name" ] || usage
  cmd_stop "$name" quiet
  rm -rf "$(cluster_dir "$name")"
}

cmd_env() {
  local name="${1:-}"; [ -n "$name" ] || usage
  cat "$(cluster_dir "$name")/env"
}

cmd_nodetool() {
  local name="${1:-}" node="${2:-}"
  [ -n "$name" ] && [ -n "$node" ] || usage
  shift 2
  nodetool_quiet "$(cluster_dir "$name")/$node" "$@"
}

command="${1:-}"; shift || true
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  kill) cmd_kill "$@" ;;
  wait-down) cmd_wait_down "$@" ;;
  destroy) cmd_destroy "$@" ;;
  pause) cmd_signal STOP "$@" ;;
  resume) cmd_signal CONT "$@" ;;
  env) cmd_env "$@" ;;
  nodetool) cmd_nodetool "$@" ;;
  rebuild) cmd_rebuild "$@" ;;
  *) usage ;;
esac
