#!/usr/bin/env python3
"""The rules every workload this repository deploys must follow, checked over rendered
manifests.

  policy.py FILE...        check; exit 1 listing every violation
  policy.py --self-test    check each fixture in tests/k8s/fixtures/ and require exactly the
                           violations its `# expect:` header lists (so a rule that stops
                           catching what it should fails the run)

Rules (the id is what a violation is reported and expected under):
  run-as-non-root         every container runs as non-root (runAsNonRoot true at container or
                          pod level, and no runAsUser 0)
  read-only-root-fs       readOnlyRootFilesystem true
  no-privilege-escalation allowPrivilegeEscalation false
  drop-all-capabilities   capabilities drop ALL, none added
  not-privileged          no privileged container, no host network, PID or IPC namespace
  seccomp-runtime-default seccompProfile RuntimeDefault at container or pod level
  resources               cpu and memory requests and limits on every container
  image-pinned            every image has a tag other than latest, or a digest
  probes                  every long-running container (Deployment, StatefulSet, DaemonSet;
                          not init containers, Jobs or Pods) has liveness, readiness and
                          startup probes
  no-service-account-token  automountServiceAccountToken false on every pod and ServiceAccount
  pdb                     every Deployment's pods are selected by a PodDisruptionBudget
  network-policy          every Deployment's pods are selected by a NetworkPolicy
  topology-spread         every Deployment has topologySpreadConstraints
Containers include init and ephemeral containers, Jobs, CronJobs and (test) Pods.
"""
import glob
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = [
    "run-as-non-root", "read-only-root-fs", "no-privilege-escalation", "drop-all-capabilities",
    "not-privileged", "seccomp-runtime-default", "resources", "image-pinned", "probes",
    "no-service-account-token", "pdb", "network-policy", "topology-spread",
]
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def pod_spec_of(doc):
    """The pod spec and pod labels of a workload, or (None, None)."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec, (doc.get("metadata") or {}).get("labels") or {}
    if kind in LONG_RUNNING or kind == "Job":
        t = spec.get("template") or {}
        return t.get("spec") or {}, (t.get("metadata") or {}).get("labels") or {}
    if kind == "CronJob":
        t = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return t.get("spec") or {}, (t.get("metadata") or {}).get("labels") or {}
    return None, None


def selects(selector, labels):
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def image_pinned(image):
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    return last.rsplit(":", 1)[1] not in ("", "latest")


def check(docs):
    """Yields (rule, where, message) for every violation in the documents."""
    pdbs = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]

    def ns(d):
        return (d.get("metadata") or {}).get("namespace")

    for doc in docs:
        kind = doc.get("kind")
        name = (doc.get("metadata") or {}).get("name", "?")
        where = f"{kind}/{name}"
        if kind == "ServiceAccount" and doc.get("automountServiceAccountToken") is not False:
            yield "no-service-account-token", where, "automountServiceAccountToken is not false"
        pod, labels = pod_spec_of(doc)
        if pod is None:
            continue
        psc = pod.get("securityContext") or {}
        if pod.get("automountServiceAccountToken") is not False:
            yield "no-service-account-token", where, "pod automountServiceAccountToken is not false"
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            yield "not-privileged", where, "uses a host namespace"
        containers = [("container", c) for c in pod.get("containers") or []]
        containers += [("init container", c) for c in pod.get("initContainers") or []]
        containers += [("ephemeral container", c) for c in pod.get("ephemeralContainers") or []]
        for role, c in containers:
            cw = f"{where} {role} {c.get('name', '?')}"
            sc = c.get("securityContext") or {}
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            user = sc.get("runAsUser", psc.get("runAsUser"))
            if non_root is not True or user == 0:
                yield "run-as-non-root", cw, "runAsNonRoot is not true (or runAsUser is 0)"
            if sc.get("readOnlyRootFilesystem") is not True:
                yield "read-only-root-fs", cw, "readOnlyRootFilesystem is not true"
            if sc.get("allowPrivilegeEscalation") is not False:
                yield "no-privilege-escalation", cw, "allowPrivilegeEscalation is not false"
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                yield "drop-all-capabilities", cw, "capabilities do not drop ALL (or add some)"
            if sc.get("privileged"):
                yield "not-privileged", cw, "privileged"
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                yield "seccomp-runtime-default", cw, f"seccompProfile is {seccomp or 'unset'}"
            res = c.get("resources") or {}
            missing = [
                f"{part}.{r}" for part in ("requests", "limits") for r in ("cpu", "memory")
                if r not in (res.get(part) or {})
            ]
            if missing:
                yield "resources", cw, "missing " + ", ".join(missing)
            if not image_pinned(str(c.get("image", ""))):
                yield "image-pinned", cw, f"image {c.get('image')!r} has no tag, or latest"
            if kind in LONG_RUNNING and role == "container":
                absent = [p for p in ("livenessProbe", "readinessProbe", "startupProbe") if not c.get(p)]
                if absent:
                    yield "probes", cw, "no " + ", ".join(absent)
        if kind == "Deployment":
            if not any(ns(p) == ns(doc) and selects((p.get("spec") or {}).get("selector"), labels) for p in pdbs):
                yield "pdb", where, "no PodDisruptionBudget selects its pods"
            if not any(ns(p) == ns(doc) and selects((p.get("spec") or {}).get("podSelector"), labels) for p in policies):
                yield "network-policy", where, "no NetworkPolicy selects its pods"
            if not pod.get("topologySpreadConstraints"):
                yield "topology-spread", where, "no topologySpreadConstraints"


def load(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
    return docs


def self_test():
    fixtures = sorted(glob.glob(os.path.join(HERE, "fixtures", "*.yaml")))
    if not fixtures:
        print("policy self-test: no fixtures found")
        return 1
    failed = 0
    for path in fixtures:
        with open(path) as f:
            header = re.search(r"^# expect:(.*)$", f.read(), re.M)
        if not header:
            print(f"policy self-test: {path} has no '# expect:' line")
            return 1
        expected = {r.strip() for r in header.group(1).split(",") if r.strip()}
        unknown = expected - set(RULES)
        if unknown:
            print(f"policy self-test: {path} expects unknown rules {sorted(unknown)}")
            return 1
        found = {rule for rule, _, _ in check(load([path]))}
        name = os.path.basename(path)
        if found == expected:
            print(f"policy self-test: {name}: flagged exactly {len(expected)} rule(s): {', '.join(sorted(found)) or 'none'}")
        else:
            failed += 1
            print(f"policy self-test: {name}: FAIL")
            if expected - found:
                print(f"  not flagged, though expected: {', '.join(sorted(expected - found))}")
            if found - expected:
                print(f"  flagged, though not expected: {', '.join(sorted(found - expected))}")
    covered = set()
    for path in fixtures:
        with open(path) as f:
            covered |= {r.strip() for r in re.search(r"^# expect:(.*)$", f.read(), re.M).group(1).split(",") if r.strip()}
    if set(RULES) - covered:
        failed += 1
        print(f"policy self-test: no fixture exercises {', '.join(sorted(set(RULES) - covered))}")
    return 1 if failed else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    docs = load(argv)
    violations = list(check(docs))
    workloads = sum(1 for d in docs if pod_spec_of(d)[0] is not None)
    if violations:
        for rule, where, message in violations:
            print(f"  FAIL [{rule}] {where}: {message}")
        print(f"policy: {len(violations)} violation(s) in {workloads} workload(s)")
        return 1
    print(f"policy: {workloads} workload(s) in {len(argv)} file(s) follow all {len(RULES)} rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
