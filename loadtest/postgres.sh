# Sourced by the benchmark scripts that compare with PostgreSQL: the local server, or Debian's
# installed and started for the run.

# as_pg COMMAND...: runs COMMAND as the postgres user.
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi; }

# start_postgres NAME: makes sure a PostgreSQL server answers on its local socket, installing
# Debian's postgresql and starting its cluster when none does; sets started_cluster to the
# version it started (empty when one was running), for stop_postgres. NAME prefixes messages.
start_postgres() {
  local name=$1 ver tool
  started_cluster=""
  if ! pg_isready -q 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v pgbench >/dev/null 2>&1; then
      printf '\n==> installing PostgreSQL (Debian: postgresql, postgresql-contrib)\n' >&2
      apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null
    fi
    ver=$(ls /etc/postgresql | sort -n | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    started_cluster=$ver
    for _ in $(seq 1 50); do pg_isready -q && break; sleep 0.2; done
  fi
  for tool in python3 curl psql pgbench; do
    command -v "$tool" >/dev/null || {
      echo "$name: $tool is missing (Debian: apt-get install postgresql postgresql-contrib curl python3)" >&2
      exit 1
    }
  done
  as_pg psql -d postgres -qAtc 'SELECT 1' >/dev/null || {
    echo "$name: no PostgreSQL answers on its local socket for the postgres user" >&2
    exit 1
  }
}

# stop_postgres: stops the cluster start_postgres started, if it started one.
stop_postgres() {
  [ -z "${started_cluster:-}" ] || pg_ctlcluster --skip-systemctl-redirect "$started_cluster" main stop || true
}
