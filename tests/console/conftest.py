"""What the console's browser tests share: a memberd of their own on the embedded store, a
tenant seeded through the REST API (a head-office administrator and a store clerk, both with
a second factor, and a member with points), and headless Chromium with axe-core.

Run through tests/console/run.sh, which installs the tools and sets the CONSOLE_* variables.
"""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import pyotp
import pytest
from playwright.sync_api import sync_playwright

ADMIN_PASSWORD = "first-platform-operator-passphrase"
STAFF_PASSWORD = "harbour-lantern-quietly-72"
TENANT = "acme"
STORE = "s01"
MEMBER = "m-1001"
MEMBER_PHONE = "13800138000"
ARTIFACTS = os.environ.get("CONSOLE_ARTIFACTS", "target/console-artifacts")


class Api:
    """The REST API, as the tests' own setup uses it."""

    def __init__(self, base):
        self.base = base

    def send(self, method, path, body=None, token=None):
        headers = {"content-type": "application/json", "idempotency-key": str(uuid.uuid4())}
        if token:
            headers["authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            return error.code, (json.loads(text) if text else None)

    def ok(self, method, path, body=None, token=None):
        status, reply = self.send(method, path, body, token)
        assert 200 <= status < 300, f"{method} {path}: {status} {reply}"
        return reply


class Staff:
    """A staff account with its second factor; codes are never used twice."""

    def __init__(self, username, totp_uri, store=None):
        self.username = username
        self.store = store
        self.totp = pyotp.parse_uri(totp_uri)
        self.last_code = None

    def code(self):
        # A one-time code is accepted once: wait for the next one when it was used.
        while (code := self.totp.now()) == self.last_code:
            time.sleep(1)
        self.last_code = code
        return code


@pytest.fixture(scope="session")
def memberd():
    binary = os.environ.get("CONSOLE_MEMBERD", "target/debug/memberd")
    data = tempfile.mkdtemp(prefix="console-tests-")
    env = dict(os.environ)
    env.update({
        "MEMBERD_HTTP_ADDR": "127.0.0.1:0",
        "MEMBERD_GRPC_ADDR": "127.0.0.1:0",
        "MEMBERD_TELEMETRY__FILTER": "warn",
        "MEMBERD_IDENTITY__BOOTSTRAP_PASSWORD": ADMIN_PASSWORD,
    })
    log = open(os.path.join(data, "memberd.log"), "w")
    process = subprocess.Popen([binary, "--data-dir", data], env=env, stdout=log,
                               stderr=subprocess.PIPE, text=True)
    address = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.match(r"memberd: http listening on (\S+)", line)
        if match:
            address = match.group(1)
            break
    assert address, f"memberd did not listen within 60 s (log: {data}/memberd.log)"
    # Keep reading its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    yield f"http://{address}"
    process.kill()
    process.wait()


@pytest.fixture(scope="session")
def seeded(memberd):
    """The tenant, its store, two staff accounts with a second factor, and one member."""
    api = Api(memberd)
    admin = api.ok("POST", "/v1/auth/login",
                   {"tenant": "*", "username": "admin", "password": ADMIN_PASSWORD})["access_token"]
    api.ok("POST", "/v1/tenants", {"id": TENANT, "name": "Acme Retail"}, admin)
    api.ok("POST", f"/v1/tenants/{TENANT}/stores", {"id": STORE, "name": "Nanjing Road"}, admin)
    api.ok("POST", f"/v1/tenants/{TENANT}/security-policy", {"require_totp": True}, admin)
    manager = api.ok("POST", f"/v1/tenants/{TENANT}/staff", {
        "username": "wang", "display_name": "Wang Fang", "password": STAFF_PASSWORD,
        "roles": [{"role": "tenant_admin"}],
    }, admin)
    clerk = api.ok("POST", f"/v1/tenants/{TENANT}/staff", {
        "username": "li", "display_name": "Li Na", "password": STAFF_PASSWORD,
        "roles": [{"role": "clerk", "store": STORE}],
    }, admin)
    # The checker of the campaigns the manager makes.
    checker = api.ok("POST", f"/v1/tenants/{TENANT}/staff", {
        "username": "chen", "display_name": "Chen Jing", "password": STAFF_PASSWORD,
        "roles": [{"role": "tenant_admin"}],
    }, admin)
    # An account the administration test deactivates.
    auditor = api.ok("POST", f"/v1/tenants/{TENANT}/staff", {
        "username": "zhao", "display_name": "Zhao Lei", "password": STAFF_PASSWORD,
        "roles": [{"role": "auditor"}],
    }, admin)
    base = f"/v1/tenants/{TENANT}/members/{MEMBER}"
    api.ok("POST", f"{base}/profile", {
        "personal": {"name": "Zhang Wei", "phone": MEMBER_PHONE, "email": "zhang.wei@example.com"},
        "store": STORE, "channel": "store", "tags": ["vip"],
    }, admin)
    api.ok("POST", f"/v1/tenants/{TENANT}/members/m-1002/profile", {
        "personal": {"name": "Li Qiang", "phone": "13900139000"}, "store": STORE,
    }, admin)
    api.ok("POST", f"{base}/wallet", None, admin)
    api.ok("POST", f"{base}/adjustments", {"points": 1000, "reason": "welcome gift"}, admin)
    return {
        "api": api,
        "admin_token": admin,
        "manager": Staff("wang", manager["totp_uri"]),
        "clerk": Staff("li", clerk["totp_uri"], STORE),
        "auditor": Staff("zhao", auditor["totp_uri"]),
        "checker": Staff("chen", checker["totp_uri"]),
    }


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox"],
        )
        yield chromium
        chromium.close()


def open_page(browser, width, height, locale="en-US"):
    """A fresh browser context (no session, no saved language) with axe-core in every page.
    axe is added as an init script, which the console's content security policy does not
    apply to; the console's own scripts run under it."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    context.add_init_script(path=os.environ["CONSOLE_AXE"])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    # Script errors and policy violations; not the browser's note of an answer >= 400, which
    # the screens handle (a member without a wallet answers 404, a refusal 403).
    page.on("console", lambda message: message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and page.errors.append(message.text))
    return page


def accessible(page, name):
    """Runs axe-core in the page; fails on any serious or critical violation. Keeps a
    screenshot of the screen as an artifact."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    viewport = page.viewport_size
    page.screenshot(path=os.path.join(ARTIFACTS, f"{name}-{viewport['width']}x{viewport['height']}.png"),
                    full_page=True)
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ["violations"] });
        return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ")) }));
    }""")
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: {json.dumps(bad, indent=1)}"
    return violations


def log_in(page, base, staff, password=STAFF_PASSWORD):
    page.goto(f"{base}/console")
    page.fill("#login-tenant", TENANT)
    if staff.store:
        page.fill("#login-store", staff.store)
    page.fill("#login-username", staff.username)
    page.fill("#login-password", password)
    page.fill("#login-code", staff.code())
    page.click("form button[type=submit]")
    page.wait_for_selector("nav")
