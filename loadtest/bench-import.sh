#!/usr/bin/env bash
# `memberd import` of generated members (issue 5): rows per second and peak memory, against
# the baseline a retail IT team would build first, measured in the same run: PostgreSQL
# `\copy` of the same CSV into a plain table with a primary key on the member id and unique
# indexes on phone and ID number, durable (synchronous_commit on).
#
# The two do different work. memberd parses and checks every field, seals seven personal
# fields per member (AES-256-GCM under a key of the member's own), computes three blind
# indexes (HMAC-SHA256), checks duplicates against the store, writes the member's profile,
# facts, indexes and "created" event, and syncs each batch to disk with its checkpoint. COPY
# stores the text in the clear, checked only by the column types and the unique indexes, in
# one transaction.
#
# Usage: loadtest/bench-import.sh [rows=1000000] [batch=2000]
# Prints "memberd-import ..." and "pg-copy ..." lines and the ratio. Needs a local PostgreSQL
# server on 127.0.0.1:5432 with trust auth (Debian: postgresql) and GNU time (installed if
# missing). Everything it writes is under $CARGO_TARGET_DIR (default target)/bench/import.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000} batch=${2:-2000}
target=${CARGO_TARGET_DIR:-target}
work="$target/bench/import"
db=import_baseline_$$
step() { printf '\n==> %s\n' "$*" >&2; }
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else su postgres -c "$(printf '%q ' "$@")"; fi; }

if [ ! -x /usr/bin/time ]; then
  step "installing GNU time"
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

step "building memberd (release)"
cargo build --release --locked -p memberd
memberd="$target/release/memberd"

rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
work=$(cd "$work" && pwd)
trap 'as_pg dropdb --if-exists "$db" >/dev/null 2>&1 || true; rm -rf "$work/data"' EXIT
file="$work/members.csv"

step "generating $rows members"
python3 loadtest/gen-members.py "$rows" "$file"
chmod 644 "$file"
size_mib=$(( $(stat -c %s "$file") / 1048576 ))
# The build and the generator leave dirty pages; written back during a run, they would slow it.
sync

step "memberd import: $rows rows ($size_mib MiB), batches of $batch"
load=$(cut -d' ' -f1 /proc/loadavg)
rm -rf "$work/data"
/usr/bin/time -v -o "$work/memberd.time" "$memberd" --data-dir "$work/data" import "$file" \
  --tenant bench --mapping "$file.mapping.toml" --report "$work/report.csv" --batch "$batch" \
  | tee "$work/memberd.out"
du_mib=$(( $(du -sk "$work/data/member/store" | cut -f1) / 1024 ))

step "PostgreSQL \\copy of the same file (synchronous_commit on)"
as_pg createdb "$db"
as_pg psql -q -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE TABLE members (
  member_id text PRIMARY KEY, name text, gender text, birthday date, phone text NOT NULL,
  email text, id_number text, store text, consent_sms boolean, tags text, city text);
CREATE UNIQUE INDEX ON members (phone);
CREATE UNIQUE INDEX ON members (id_number);
SQL
settings=$(as_pg psql -At -d "$db" -c 'SHOW fsync' -c 'SHOW synchronous_commit' | paste -sd/)
sync
pg_start=$(date +%s.%N)
as_pg psql -q -v ON_ERROR_STOP=1 -d "$db" -c 'SET synchronous_commit TO on' \
  -c "\\copy members FROM '$file' WITH (FORMAT csv, HEADER)"
pg_end=$(date +%s.%N)
pg_rows=$(as_pg psql -At -d "$db" -c 'SELECT count(*) FROM members')
pg_mib=$(as_pg psql -At -d "$db" -c "SELECT pg_total_relation_size('members') / 1048576")

step "summary"
python3 - "$work" "$rows" "$pg_start" "$pg_end" "$pg_rows" "$settings" "$du_mib" "$pg_mib" "$load" <<'PY'
import re, sys
work, rows, pg_start, pg_end, pg_rows, settings, du_mib, pg_mib, load = sys.argv[1:]
rows, pg_rows = int(rows), int(pg_rows)
timing = open(f"{work}/memberd.time").read()
def field(name):
    return re.search(re.escape(name) + r": (.*)", timing).group(1).strip()
clock = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
secs = sum(x * 60 ** i for i, x in enumerate(reversed(clock)))
peak_mib = int(field("Maximum resident set size (kbytes)")) / 1024
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
cpu_pct = field("Percent of CPU this job got")
printed = open(f"{work}/memberd.out").read()
imported = int(re.search(r"imported (\d+)", printed).group(1))
if imported != rows or pg_rows != rows:
    sys.exit(f"not every row went in: memberd {imported}, PostgreSQL {pg_rows} of {rows}")
m_rate = rows / secs
pg_secs = float(pg_end) - float(pg_start)
pg_rate = rows / pg_secs
print(f"memberd-import rows={rows} secs={secs:.1f} rows_per_s={m_rate:.0f} peak_rss_mib={peak_mib:.0f} "
      f"cpu_s={cpu:.1f} cpu={cpu_pct} store_mib={du_mib} loadavg_before={load}")
print(f"pg-copy rows={rows} secs={pg_secs:.1f} rows_per_s={pg_rate:.0f} table_mib={pg_mib} fsync/synchronous_commit={settings}")
print(f"ratio memberd/pg={m_rate / pg_rate:.2f}")
print(f"targets: >= 20000 rows/s: {'met' if m_rate >= 20000 else 'MISSED'}; "
      f"peak < 500 MiB: {'met' if peak_mib < 500 else 'MISSED'}")
print("note: different work. memberd validates every field, seals 7 personal fields per member, "
      "blind-indexes 3, checks duplicates, stores the event, and fsyncs every batch; "
      "COPY stores plaintext in one transaction.")
PY
