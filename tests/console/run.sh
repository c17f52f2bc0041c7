#!/usr/bin/env bash
# The console's browser tests: headless Chromium (Debian's `chromium`, driven by Playwright
# from PyPI through its executable path; no browser is downloaded) against a memberd started
# by the tests on the embedded store, with axe-core (npm) run in every screen.
#
#   bash tests/console/run.sh            # builds memberd (debug) first if needed
#
# The tools go under target/console-tools/ on first use and are kept between runs;
# screenshots under target/console-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS=target/console-tools
PY_PACKAGES=(playwright==1.65.3 pytest==9.2.0 pyotp==2.12.1)
AXE_NPM_PACKAGE=axe-core@4.14.1
PY="$TOOLS/venv/bin/python"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS"
if ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } ||
    fail "chromium could not be installed (apt-get install chromium)"
fi

stamp="$TOOLS/venv/.packages"
if ! { [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${PY_PACKAGES[*]}" ]; }; then
  step "installing ${PY_PACKAGES[*]} into $TOOLS/venv"
  rm -rf "$TOOLS/venv"
  python3 -m venv "$TOOLS/venv" || fail "python3 -m venv $TOOLS/venv failed"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" ||
    fail "pip could not install ${PY_PACKAGES[*]}"
  echo "${PY_PACKAGES[*]}" >"$stamp"
fi

AXE="$TOOLS/axe/package/axe.min.js"
if [ ! -f "$AXE" ] || [ "$(cat "$TOOLS/axe/.package" 2>/dev/null)" != "$AXE_NPM_PACKAGE" ]; then
  step "fetching $AXE_NPM_PACKAGE into $TOOLS/axe (npm pack)"
  command -v npm >/dev/null || fail "npm is needed to fetch axe-core"
  rm -rf "$TOOLS/axe" && mkdir -p "$TOOLS/axe"
  (cd "$TOOLS/axe" && npm pack --silent "$AXE_NPM_PACKAGE" >/dev/null) || fail "npm pack $AXE_NPM_PACKAGE failed"
  tar -xzf "$TOOLS"/axe/*.tgz -C "$TOOLS/axe" package/axe.min.js || fail "no axe.min.js in $AXE_NPM_PACKAGE"
  echo "$AXE_NPM_PACKAGE" >"$TOOLS/axe/.package"
fi

if [ ! -x target/debug/memberd ] || [ -n "$(find services -newer target/debug/memberd -name '*.rs' -print -quit)" ] ||
  [ -n "$(find services/gateway/console -newer target/debug/memberd -type f -print -quit)" ]; then
  step "building memberd (debug)"
  cargo build --locked -p memberd
fi

step "console browser tests (headless Chromium, axe-core; screenshots in target/console-artifacts)"
rm -rf target/console-artifacts && mkdir -p target/console-artifacts
CONSOLE_MEMBERD="$PWD/target/debug/memberd" \
  CONSOLE_CHROMIUM="$(command -v chromium)" \
  CONSOLE_AXE="$PWD/$AXE" \
  CONSOLE_ARTIFACTS="$PWD/target/console-artifacts" \
  "$PY" -m pytest -p no:cacheprovider -q tests/console "$@"
