#!/usr/bin/env python3
"""Checks of what the chart renders that no schema can make.

  render_checks.py config FILE...    every memberd.toml in the rendered ConfigMaps parses as
                                     TOML, holds no float (memberd's numeric settings are
                                     integers; Helm's own toToml would write 3 as 3.0), and
                                     names only settings the Configuration table of README.md
                                     documents: memberd ignores an unknown key, so a misspelt
                                     one would silently do nothing
  render_checks.py metrics FILE...   every metric the PrometheusRules and Grafana dashboards
                                     query is one memberd exports (METRICS below) or a
                                     recording rule of the chart, and every label they group
                                     or match by belongs to it
  render_checks.py values CHART      every value of CHART/values.yaml is in the table of
                                     CHART/README.md (per service as `<service>.key`)
  render_checks.py alerts DOC FILE.. every alert of the rendered PrometheusRules has a
                                     "### <alert>" section in DOC (what it means, what to
                                     do), and DOC's "## Alerts" has no section of an alert
                                     that no longer exists
  render_checks.py rules OUT FILE... writes the PrometheusRules' groups as one rules file for
                                     promtool
"""
import json
import os
import re
import sys
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The metric families memberd exports and their labels (histograms add _bucket/_sum/_count
# and le). Keep in step with the services' metrics.
METRICS = {
    "http_requests_total": {"route", "method", "status", "code"},
    "http_request_duration_seconds": {"route", "method"},
    "grpc_requests_total": {"method", "code", "error"},
    "grpc_request_duration_seconds": {"method"},
    "store_operation_duration_seconds": {"service", "table", "op"},
    "store_operation_errors_total": {"service", "table", "op"},
    "cache_lookups_total": {"cache", "result"},
    "events_publication_lag_seconds": {"service"},
    "events_outbox_backlog": {"service"},
    "events_published_total": {"service"},
    "events_publish_failures_total": {"service"},
    "events_redeliveries_total": {"consumer"},
    "events_dead_letters_total": {"consumer"},
    "audit_appends_total": {"outcome"},
    "scheduler_runs_total": {"scheduler", "outcome"},
    "scheduler_run_duration_seconds": {"scheduler"},
    "scheduler_lease_held": {"scheduler"},
    "nats_connected": set(),
    "redis_connected": set(),
    "ledger_store_commit_seconds": set(),
    "region_failovers_total": set(),
    "region_yielding": set(),
    "region_lease_held": set(),
    # Prometheus' own, per scrape target.
    "up": set(),
}
HISTOGRAMS = {
    "http_request_duration_seconds", "grpc_request_duration_seconds",
    "store_operation_duration_seconds", "events_publication_lag_seconds",
    "scheduler_run_duration_seconds", "ledger_store_commit_seconds",
}
# Labels Prometheus and the ServiceMonitor attach to every series, and the chart's records.
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "container", "endpoint", "component", "memberd_release"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "by", "without", "and", "or",
    "unless", "on", "ignoring", "group_left", "group_right", "histogram_quantile", "bool",
    "max_over_time", "min_over_time", "avg_over_time", "absent", "vector", "scalar", "offset",
    "label_values", "topk", "bottomk", "clamp_min", "clamp_max", "time", "deriv", "delta",
    "inf", "nan",
}


def documented_settings():
    """The keys of README.md's Configuration table, e.g. events.nats.url."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", first)
        base = names[0]
        keys.add(base)
        for n in names[1:]:
            # `events.nats.user`, `.password`: the second shares the first one's table.
            keys.add(base.rsplit(".", 1)[0] + n if n.startswith(".") else n)
    return keys


def leaves(table, prefix=""):
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from leaves(v, path + ".")
        else:
            yield path, v


def floats_in(value):
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(floats_in(v) for v in value)
    if isinstance(value, dict):
        return any(floats_in(v) for v in value.values())
    return False


def load(paths):
    docs = []
    for p in paths:
        with open(p) as f:
            docs += [(p, d) for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    return docs


def check_config(paths):
    known = documented_settings()
    problems, files = [], 0
    for path, doc in load(paths):
        if doc.get("kind") != "ConfigMap" or "memberd.toml" not in (doc.get("data") or {}):
            continue
        where = f"{path}: ConfigMap/{doc['metadata']['name']}"
        files += 1
        try:
            config = tomllib.loads(doc["data"]["memberd.toml"])
        except tomllib.TOMLDecodeError as e:
            problems.append(f"{where}: memberd.toml is not TOML: {e}")
            continue
        if not (config.get("telemetry") or {}).get("service_name"):
            problems.append(f"{where}: memberd.toml lacks telemetry.service_name (rendered empty?)")
        for key, value in leaves(config):
            parts = key.split(".")
            if not any(".".join(parts[:i]) in known for i in range(1, len(parts) + 1)):
                problems.append(f"{where}: {key} is not a setting README.md documents")
            if floats_in(value):
                problems.append(f"{where}: {key} = {value!r} is a float")
    for p in problems:
        print(f"  FAIL {p}")
    print(f"config: {files} memberd.toml file(s) checked against {len(known)} documented settings"
          + (f": {len(problems)} problem(s)" if problems else ": all keys documented, no floats"))
    return 1 if problems else 0


def queries(docs):
    """(where, expr) for every rule and dashboard query, and the chart's record names."""
    out, records = [], set()
    for path, doc in docs:
        if doc.get("kind") == "PrometheusRule":
            for g in doc["spec"]["groups"]:
                for r in g["rules"]:
                    if "record" in r:
                        records.add(r["record"])
                    out.append((f"{path}: {g['name']}/{r.get('alert') or r.get('record')}", str(r["expr"])))
        elif doc.get("kind") == "ConfigMap":
            for name, body in (doc.get("data") or {}).items():
                if not name.endswith(".json"):
                    continue
                dash = json.loads(body)
                for panel in dash.get("panels", []):
                    for t in panel.get("targets", []):
                        out.append((f"{path}: {name}/{panel['title']}", t["expr"]))
    return out, records


def family(name):
    if name in METRICS:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return None


def check_metrics(paths):
    docs = load(paths)
    found, records = queries(docs)
    problems = []
    for where, expr in found:
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values out of the way
        bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors
        names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
        families, labels_allowed = set(), set(TARGET_LABELS)
        grouping = set()
        for m in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", bare):
            grouping |= {x.strip() for x in m.group(1).split(",") if x.strip()}
        matchers = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"", bare))
        for n in names - PROMQL_WORDS - grouping - matchers:
            if n.startswith("$") or re.fullmatch(r"[0-9eE]+", n):
                continue
            if n in records:
                labels_allowed |= {"memberd_release"}
                continue
            f = family(n)
            if f is None:
                problems.append(f"{where}: {n} is not a metric memberd exports")
                continue
            families.add(f)
            labels_allowed |= METRICS[f]
            if n.endswith("_bucket"):
                labels_allowed.add("le")
        if families or grouping or matchers:
            for label in (grouping | matchers) - labels_allowed:
                problems.append(f"{where}: label {label} is not one of {', '.join(sorted(families)) or 'its metrics'}")
    for p in problems:
        print(f"  FAIL {p}")
    print(f"metrics: {len(found)} quer(ies) in rules and dashboards checked"
          + (f": {len(problems)} problem(s)" if problems else ": every metric and label is one memberd exports"))
    return 1 if problems else 0


SERVICES = ("gateway", "identity", "ledger", "member", "campaign")
# Values whose keys are data (datacenter names, label names) or a whole Kubernetes object:
# documented as one row.
WHOLE = ("scylla.replication", "dashboards.labels", "podSecurityContext", "securityContext",
         "<service>.resources", "<service>.pdb", "single.resources", "single.pdb",
         "migrate.resources", "ingress.hosts", "networkPolicy.monitoringFrom")


def check_values_documented(chart):
    with open(os.path.join(chart, "values.yaml")) as f:
        values = yaml.safe_load(f)
    with open(os.path.join(chart, "README.md")) as f:
        readme = f.read()
    readme = re.sub(r"^```.*?^```", "", readme, flags=re.S | re.M)  # code blocks
    documented = set(re.findall(r"`([^`\n]+)`", readme))
    missing = []

    def walk(node, path):
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
            return
        parts = path.split(".")
        if parts[0] in SERVICES:
            parts[0] = "<service>"
        generic = ".".join(parts)
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if generic in documented or path in documented or prefixes & set(WHOLE):
            return
        missing.append(path)

    walk(values, "")
    for m in missing:
        print(f"  FAIL {chart}/values.yaml: {m} is not in {chart}/README.md")
    print(f"values: every value of {chart}/values.yaml is documented" if not missing
          else f"values: {len(missing)} value(s) undocumented")
    return 1 if missing else 0


def check_alerts_documented(doc, paths):
    alerts = set()
    for _, d in load(paths):
        if d.get("kind") == "PrometheusRule":
            alerts |= {r["alert"] for g in d["spec"]["groups"] for r in g["rules"] if "alert" in r}
    with open(doc) as f:
        text = f.read()
    section = text.split("\n## Alerts", 1)[1].split("\n## ", 1)[0] if "\n## Alerts" in text else ""
    headings = set(re.findall(r"^### (\S+)\s*$", section, re.M))
    problems = [f"{a} has no '### {a}' section under '## Alerts' in {doc}" for a in sorted(alerts - headings)]
    problems += [f"{doc} documents {h}, which no rule defines" for h in sorted(headings - alerts)]
    for p in problems:
        print(f"  FAIL {p}")
    if not alerts:
        print("alerts: no PrometheusRule in the renders")
        return 1
    print(f"alerts: {len(alerts)} alert(s), each documented in {doc}" if not problems
          else f"alerts: {len(problems)} problem(s)")
    return 1 if problems else 0


def write_rules(out, paths):
    groups = []
    for _, doc in load(paths):
        if doc.get("kind") == "PrometheusRule":
            groups += doc["spec"]["groups"]
    with open(out, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    print(f"rules: {sum(len(g['rules']) for g in groups)} rule(s) in {len(groups)} group(s) written to {out}")
    return 0 if groups else 1


def main(argv):
    if len(argv) >= 2 and argv[0] == "config":
        return check_config(argv[1:])
    if len(argv) >= 2 and argv[0] == "metrics":
        return check_metrics(argv[1:])
    if len(argv) == 2 and argv[0] == "values":
        return check_values_documented(argv[1])
    if len(argv) >= 3 and argv[0] == "alerts":
        return check_alerts_documented(argv[1], argv[2:])
    if len(argv) >= 3 and argv[0] == "rules":
        return write_rules(argv[1], argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
