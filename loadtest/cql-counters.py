#!/usr/bin/env python3
"""The counters of a Cassandra node that the CQL benchmark compares per earn, read from its own
metrics (JMX, through `tests/cql/cluster.sh nodetool NAME NODE sjk mxdump`).

    cql-counters.py sample CLUSTER NODE [KEYSPACE,...]  prints the node's counters now, as JSON
    cql-counters.py per-op BEFORE AFTER OPS         what AFTER adds to BEFORE, per op, as JSON

Counters: statements executed (prepared, unprepared, batches), coordinator requests by kind
(reads, writes, conditional writes and reads), contention rounds of conditional writes, the
node's own reads and writes of system.paxos (Paxos state, one per Paxos round on each
replica), the node's local reads and writes of each table of KEYSPACE (`nodetool
tablestats`: which statements the counts are made of), and the coordinator's latency
percentiles (microseconds, a decaying reservoir: the
last minutes) of reads, writes and conditional writes.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER_SH = os.path.join(HERE, "..", "tests", "cql", "cluster.sh")

QUERIES = {
    "cql": "org.apache.cassandra.metrics:type=CQL,*",
    "batch": "org.apache.cassandra.metrics:type=Batch,*",
    "request": "org.apache.cassandra.metrics:type=ClientRequest,*",
    "paxos": "org.apache.cassandra.metrics:type=Table,keyspace=system,scope=paxos,*",
}


def mxdump(cluster, node, query):
    out = subprocess.run(
        ["bash", CLUSTER_SH, "nodetool", cluster, node, "sjk", "mxdump", "-q", query],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # sjk prints the JSON document after a line or two of its own.
    return json.loads(out[out.index("{"):])["beans"]


def beans_by_name(beans):
    out = {}
    for bean in beans:
        props = dict(p.split("=", 1) for p in bean["name"].split(":", 1)[1].split(","))
        out[(props.get("scope"), props.get("name"))] = bean
    return out


def table_counts(cluster, node, keyspaces):
    """{keyspace.table: (local reads, local writes)} of `keyspaces` (comma separated), from
    nodetool tablestats."""
    out = subprocess.run(
        ["bash", CLUSTER_SH, "nodetool", cluster, node, "tablestats"] + keyspaces.split(","),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tables, keyspace, table = {}, None, None
    for line in out.splitlines():
        key, _, value = line.strip().partition(": ")
        if key == "Keyspace":
            keyspace = value
        elif key == "Table":
            table = f"{keyspace}.{value}"
            tables[table] = [0, 0]
        elif table and key == "Local read count":
            tables[table][0] = int(value)
        elif table and key == "Local write count":
            tables[table][1] = int(value)
    return tables


def sample(cluster, node, keyspace=None):
    c = {}
    cql = beans_by_name(mxdump(cluster, node, QUERIES["cql"]))
    c["prepared_statements"] = cql[(None, "PreparedStatementsExecuted")]["Count"]
    c["unprepared_statements"] = cql[(None, "RegularStatementsExecuted")]["Count"]
    batch = beans_by_name(mxdump(cluster, node, QUERIES["batch"]))
    # Registered at the first batch: none before it.
    c["batches"] = sum(
        bean["Count"]
        for (_, name), bean in batch.items()
        if name and name.startswith("PartitionsPer") and "Count" in bean
    )
    request = beans_by_name(mxdump(cluster, node, QUERIES["request"]))
    for scope, key in [
        ("Read", "reads"),
        ("Write", "writes"),
        ("CASWrite", "cas_writes"),
        ("CASRead", "cas_reads"),
        ("RangeSlice", "range_reads"),
    ]:
        latency = request[(scope, "Latency")]
        c[key] = latency["Count"]
        for pct in ("50thPercentile", "99thPercentile", "999thPercentile"):
            c[f"{key}_{pct[:-10]}_us"] = latency[pct]
    contention = request[("CASWrite", "ContentionHistogram")]
    c["cas_write_contention_rounds"] = (
        contention["Mean"] * contention["Count"] if contention["Count"] else 0.0
    )
    c["cas_write_condition_not_met"] = request[("CASWrite", "ConditionNotMet")]["Count"]
    paxos = beans_by_name(mxdump(cluster, node, QUERIES["paxos"]))
    c["paxos_table_writes"] = paxos[("paxos", "WriteLatency")]["Count"]
    c["paxos_table_reads"] = paxos[("paxos", "ReadLatency")]["Count"]
    if keyspace:
        c["tables"] = table_counts(cluster, node, keyspace)
    return c


COUNTS = [
    "prepared_statements",
    "unprepared_statements",
    "batches",
    "reads",
    "writes",
    "cas_writes",
    "cas_reads",
    "range_reads",
    "cas_write_contention_rounds",
    "cas_write_condition_not_met",
    "paxos_table_writes",
    "paxos_table_reads",
]


def per_op(before, after, ops):
    out = {k: (after[k] - before[k]) / ops for k in COUNTS}
    out["statements"] = (
        out["prepared_statements"] + out["unprepared_statements"] + out["batches"]
    )
    if "tables" in after:
        out["tables"] = {
            table: [
                (reads - before["tables"].get(table, [0, 0])[0]) / ops,
                (writes - before["tables"].get(table, [0, 0])[1]) / ops,
            ]
            for table, (reads, writes) in after["tables"].items()
        }
    # Latencies: as the reservoir has them after the run (the run's last minutes).
    for k, v in after.items():
        if k.endswith("_us"):
            out[k] = v
    return out


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "sample":
        print(json.dumps(sample(*argv[2:])))
    elif len(argv) == 5 and argv[1] == "per-op":
        with open(argv[2]) as b, open(argv[3]) as a:
            print(json.dumps(per_op(json.load(b), json.load(a), float(argv[4]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
