#!/usr/bin/env python3
"""Sorts Kubernetes manifests into built-in objects and custom resources, and validates the
custom resources against the JSON Schemas in tests/k8s/crds.

  validate.py --builtin-out DIR FILE...

Every document of every FILE is either
  - a custom resource this project uses (ServiceMonitor, PrometheusRule, HTTPRoute,
    ScyllaCluster): validated here against its schema, or
  - a built-in object (core, apps, batch, policy, autoscaling, networking.k8s.io, ...):
    written to DIR, one file each, for `kubernetes-validate --strict` (check.sh runs it),
  - anything else: an error, so a new kind cannot slip through unvalidated.

  validate.py --values-schema SCHEMA FILE...

validates whole YAML files (Helm values of a third-party chart) against SCHEMA, and hands
the built-in objects of their `extraResources` to DIR the same way when --builtin-out is
given.
"""
import argparse
import json
import os
import re
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CUSTOM = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.schema.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute.schema.json",
    ("scylla.scylladb.com/v1", "ScyllaCluster"): "scyllacluster.schema.json",
}
# API groups served by Kubernetes itself (kubernetes-validate has their schemas).
BUILTIN_GROUPS = {
    "", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "certificates.k8s.io",
}


def schema(name):
    with open(os.path.join(HERE, "crds", name)) as f:
        s = json.load(f)
    jsonschema.Draft7Validator.check_schema(s)
    return jsonschema.Draft7Validator(s)


def errors_of(validator, doc):
    out = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        message = e.message
        if e.validator in ("oneOf", "anyOf") and e.schema.get("description"):
            # "... is not valid under any of the given schemas" quotes the whole object;
            # the schema's own words say what was wanted.
            message = f"not what the schema allows: {e.schema['description']}"
        out.append(f"{where}: {message}")
    return out


def docs_of(path):
    with open(path) as f:
        for i, doc in enumerate(yaml.safe_load_all(f)):
            if doc is not None:
                yield i, doc


def safe(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builtin-out")
    ap.add_argument("--values-schema")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    validators = {key: schema(name) for key, name in CUSTOM.items()}
    failures = []
    counts = {}
    builtin = 0

    def builtin_object(path, i, doc):
        nonlocal builtin
        if args.builtin_out is None:
            return
        os.makedirs(args.builtin_out, exist_ok=True)
        name = (doc.get("metadata") or {}).get("name", "unnamed")
        out = os.path.join(
            args.builtin_out,
            f"{safe(os.path.basename(path))}-{i:03d}-{doc.get('kind')}-{safe(name)}.yaml",
        )
        with open(out, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        builtin += 1

    def one(path, i, doc):
        api, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        where = f"{path} [{i}] {kind}/{(doc.get('metadata') or {}).get('name', '?')}"
        if (api, kind) in validators:
            errs = errors_of(validators[(api, kind)], doc)
            counts[kind] = counts.get(kind, 0) + 1
            for e in errs:
                failures.append(f"{where}: {e}")
            return
        group = api.split("/")[0] if "/" in api else ""
        if group in BUILTIN_GROUPS:
            builtin_object(path, i, doc)
            return
        failures.append(f"{where}: {api} {kind} is neither built in nor has a schema in tests/k8s/crds")

    if args.values_schema:
        validator = schema(args.values_schema)
        for path in args.files:
            for i, doc in docs_of(path):
                counts["values file"] = counts.get("values file", 0) + 1
                for e in errors_of(validator, doc):
                    failures.append(f"{path}: {e}")
                for j, extra in enumerate(doc.get("extraResources") or []):
                    one(path, 100 + j, extra)
    else:
        for path in args.files:
            for i, doc in docs_of(path):
                one(path, i, doc)

    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    if failures:
        print("\n".join(f"  FAIL {f}" for f in failures))
        print(f"validate: {len(failures)} problem(s); checked against schemas: {summary}")
        return 1
    print(f"validate: valid against tests/k8s/crds: {summary}; built-in objects handed on: {builtin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
