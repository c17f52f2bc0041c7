#!/usr/bin/env python3
"""The rendered chart boots: the migrate Job and every Deployment of a `helm template`
render, each started as a local process the way its pod would start it; every one must
become ready, and an earn must go through the gateway.

  boot.py --render FILE --memberd BINARY --logs DIR [--dockerfile Dockerfile] [--started T]

tests/k8s/boot.sh renders the chart with tests/k8s/boot-values.yaml, starts NATS and Redis,
and runs this. A container is taken as rendered: its command and arguments over the image's
ENTRYPOINT and CMD (read from the Dockerfile), its environment, with the values of Secrets
from secret_values below, and its ConfigMap volumes, written to a directory that stands for
the mount path. Only what sharing one host forces is changed, and each change is printed:
the bind addresses, and a data directory that does not exist here (a scratch one, which must
stay empty where the pod's is on its read-only root filesystem).
"""
import argparse
import base64
import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import yaml

# Every pod listens on 0.0.0.0:8080 and :50051; here the pods share one host, so each target
# gets a loopback address of its own and keeps the ports. tests/k8s/boot-values.yaml points
# every *_endpoint at these; check_endpoints holds the render to that.
ADDRESSES = {
    "identity": "127.0.0.11",
    "ledger": "127.0.0.12",
    "member": "127.0.0.13",
    "campaign": "127.0.0.14",
    "gateway": "127.0.0.15",
}
GRPC_PORT = 50051
BIND_VARIABLES = ("MEMBERD_HTTP_ADDR", "MEMBERD_GRPC_ADDR")
DATA_DIR_VARIABLE = "MEMBERD_DATA_DIR"
# The image's binary; the local build stands in for it.
IMAGE_BINARY = "/usr/local/bin/memberd"
READY_WITHIN_SECS = 60
MIGRATE_WITHIN_SECS = 60
STOP_WITHIN_SECS = 15
POLL_SECS = 0.25
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")

# An Ed25519 private key in PKCS#8 DER: this header, then the 32-byte seed.
ED25519_PKCS8_HEADER = bytes.fromhex("302e020100300506032b657004220420")


def secret_values():
    """What the Secrets the chart reads would hold (docs/operations/kubernetes.md,
    "Secrets"), by Secret and key; fresh for each run."""
    return {
        ("memberd-secrets", "member-master-key"): base64.b64encode(os.urandom(32)).decode(),
        ("memberd-secrets", "service-credential"): secrets.token_urlsafe(36),
        # Hex: the password policy refuses a password containing the username.
        ("memberd-secrets", "bootstrap-password"): "boot-" + secrets.token_hex(12),
        ("memberd-secrets", "signing-key"): base64.b64encode(
            ED25519_PKCS8_HEADER + os.urandom(32)
        ).decode(),
    }


class Failure(Exception):
    pass


# The scratch directory standing for the pods' volumes and data directories, shown as $WORK.
WORK = None


def shown(text):
    return text.replace(WORK, "$WORK") if WORK else text


def step(text):
    print(f"\n==> {text}", flush=True)


def say(text):
    print(f"    {text}", flush=True)


# --- The render ------------------------------------------------------------------------------


def load_render(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    hooks = [
        d
        for d in docs
        if d.get("kind") == "Job"
        and "pre-install" in d["metadata"].get("annotations", {}).get("helm.sh/hook", "")
    ]
    if not deployments:
        raise Failure(f"{path} has no Deployment")
    if len(hooks) != 1:
        raise Failure(f"{path} has {len(hooks)} pre-install hook Jobs; expected the migrate Job")
    return deployments, configmaps, hooks[0]


def image_entrypoint(dockerfile):
    """The ENTRYPOINT and CMD (exec form) of the Dockerfile's last stage."""
    entrypoint, cmd = None, []
    with open(dockerfile) as f:
        for line in f:
            if re.match(r"FROM\s", line, re.I):
                entrypoint, cmd = None, []
            elif m := re.match(r"ENTRYPOINT\s+(\[.*\])\s*$", line):
                entrypoint = json.loads(m.group(1))
            elif m := re.match(r"CMD\s+(\[.*\])\s*$", line):
                cmd = json.loads(m.group(1))
    if not entrypoint:
        raise Failure(f"{dockerfile}: no ENTRYPOINT in exec form in the last stage")
    return entrypoint, cmd


def expand(text, env):
    """Kubernetes' $(VAR) references in command, args and env values; $$ is a $."""

    def one(m):
        return "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, text)


# --- A pod's container, made runnable here ---------------------------------------------------


class Pod:
    def __init__(self, name, target, address, spec, ctx):
        """`address`: the loopback address it listens on, or None for one that listens on
        nothing (the migrate Job)."""
        self.name, self.target, self.address = name, target, address
        self.dir = os.path.join(ctx["work"], target)
        os.makedirs(self.dir)
        self.notes = []
        for key in ("initContainers", "ephemeralContainers"):
            if spec.get(key):
                raise Failure(f"{name}: the boot test does not handle {key}")
        containers = spec.get("containers", [])
        if len(containers) != 1:
            raise Failure(f"{name}: {len(containers)} containers; the boot test handles one")
        self.container = containers[0]
        self.ports = {
            p["name"]: p["containerPort"] for p in self.container.get("ports", []) if "name" in p
        }
        self.mounts = self._mounts(spec)
        self._write_volumes(ctx["configmaps"])
        self.env = self._env(ctx["secrets"])
        self.argv = self._argv(ctx["entrypoint"])

    def _mounts(self, spec):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = {}
        for m in self.container.get("volumeMounts", []):
            if m.get("subPath") or m.get("subPathExpr"):
                raise Failure(f"{self.name}: mount {m['name']} uses subPath (not handled)")
            volume = volumes.get(m["name"])
            if volume is None:
                raise Failure(f"{self.name}: mount {m['name']} names no volume")
            kinds = [k for k in volume if k != "name"]
            if kinds not in (["configMap"], ["emptyDir"]):
                raise Failure(
                    f"{self.name}: volume {m['name']} is {', '.join(kinds)}; the boot test "
                    "handles configMap and emptyDir volumes only"
                )
            local = os.path.join(self.dir, "volumes", m["name"])
            mounts[m["mountPath"].rstrip("/") or "/"] = (local, volume)
        if mounts:
            listed = ", ".join(
                f"{path} ({next(k for k in volume if k != 'name')} {volume['name']})"
                for path, (_, volume) in mounts.items()
            )
            self.notes.append(f"mounts {listed} -> {shown(self.dir)}/volumes/<volume>")
        return mounts

    def _write_volumes(self, configmaps):
        for local, volume in self.mounts.values():
            os.makedirs(local)
            source = volume.get("configMap")
            if source is None:
                continue
            configmap = configmaps.get(source["name"])
            if configmap is None:
                raise Failure(f"{self.name}: ConfigMap {source['name']} is not in the render")
            if configmap.get("binaryData"):
                raise Failure(f"{self.name}: ConfigMap {source['name']} has binaryData "
                              "(not handled)")
            data = configmap.get("data", {})
            for item in source.get("items") or [{"key": k, "path": k} for k in data]:
                if item["key"] not in data:
                    raise Failure(f"{self.name}: ConfigMap {source['name']} has no {item['key']}")
                path = os.path.join(local, item["path"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                text = self._local_paths_in_file(data[item["key"]])
                with open(path, "w") as f:
                    f.write(text)

    def _local_path(self, text):
        """A path under a mount path, moved to the directory standing for the mount: a whole
        argument or value, or the value of a --flag=path."""
        for path, (local, _) in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if text == path or text.startswith(path + "/"):
                return local + text[len(path) :]
            flag, eq, value = text.partition("=")
            if eq and (value == path or value.startswith(path + "/")):
                return f"{flag}={local}{value[len(path):]}"
        return text

    def _local_paths_in_file(self, text):
        """The same for quoted strings in a mounted file (a credentials_file, say)."""
        for path, (local, _) in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            moved = re.sub('"' + re.escape(path) + '(?=[/"])', lambda _: '"' + local, text)
            if moved != text:
                self.notes.append(f"paths under {path} in a mounted file -> {shown(local)}")
            text = moved
        return text

    def _env(self, secret_map):
        if self.container.get("envFrom"):
            raise Failure(f"{self.name}: the boot test does not handle envFrom")
        env = {}
        for var in self.container.get("env", []):
            name = var["name"]
            source = var.get("valueFrom")
            if source is None:
                env[name] = self._local_path(expand(var.get("value", ""), env))
                continue
            ref = source.get("secretKeyRef")
            if ref is None:
                raise Failure(f"{self.name}: {name} is valueFrom {', '.join(source)} (not handled)")
            if (ref["name"], ref["key"]) not in secret_map:
                raise Failure(
                    f"{self.name}: {name} takes key {ref['key']} of Secret {ref['name']}, which "
                    "the boot test has no value for (secret_values in tests/k8s/boot.py)"
                )
            env[name] = secret_map[(ref["name"], ref["key"])]
        if self.address is not None:
            # Every pod listens on 0.0.0.0 with the same ports; on one host each listens on
            # its own loopback address instead, with the same ports.
            moved = []
            for name in BIND_VARIABLES:
                rendered = env.get(name)
                host, _, port = (rendered or "").rpartition(":")
                if host not in ("0.0.0.0", "[::]"):
                    raise Failure(
                        f"{self.name}: {name} is {rendered!r} in the rendered environment; "
                        "a pod should listen on every address"
                    )
                env[name] = f"{self.address}:{port}"
                moved.append(f"{name}={env[name]}")
            self.notes.append(
                f"{', '.join(moved)}: the rendered 0.0.0.0 moved to this pod's own loopback "
                "address, the ports kept (every pod shares this one host)"
            )
        data_dir = env.get(DATA_DIR_VARIABLE)
        self.read_only_data_dir = None
        if data_dir is not None and not (os.path.isdir(data_dir) and os.access(data_dir, os.W_OK)):
            local = os.path.join(self.dir, "data")
            os.makedirs(local)
            env[DATA_DIR_VARIABLE] = local
            # No volume there: in the pod it is on the root filesystem, read-only if so set.
            security = self.container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem"):
                self.read_only_data_dir = (data_dir, local)
            self.notes.append(
                f"{DATA_DIR_VARIABLE}={shown(local)}: the rendered {data_dir} is no writable "
                "directory here"
            )
        return env

    def _argv(self, entrypoint):
        image_entrypoint, image_cmd = entrypoint
        if "command" in self.container:
            argv = self.container["command"] + self.container.get("args", [])
        else:
            argv = image_entrypoint + self.container.get("args", image_cmd)
        argv = [self._local_path(expand(a, self.env)) for a in argv]
        if not argv or argv[0] != IMAGE_BINARY:
            raise Failure(f"{self.name} runs {argv[:1]}; the boot test runs {IMAGE_BINARY} only")
        return argv

    def port(self, port):
        if isinstance(port, int):
            return port
        if port in self.ports:
            return self.ports[port]
        raise Failure(f"{self.name}: a probe names port {port}, which the container lacks")

    def config_files(self):
        for local, volume in self.mounts.values():
            if "configMap" in volume:
                for root, _, files in os.walk(local):
                    yield from (os.path.join(root, f) for f in files if f.endswith(".toml"))


def check_endpoints(pods):
    """Every *_endpoint a process is given names its callee's loopback address: one left at a
    cluster name would not resolve here, and that would be no fault of the chart."""
    for pod in pods:
        for path in pod.config_files():
            with open(path, "rb") as f:
                config = tomllib.load(f)
            for key, value in config.items():
                if key.endswith("_endpoint"):
                    callee = key[: -len("_endpoint")]
                    want = f"http://{ADDRESSES.get(callee, '?')}:{GRPC_PORT}"
                    if value != want:
                        raise Failure(
                            f"{pod.name}: {key} = {value!r}; tests/k8s/boot-values.yaml "
                            f"should make it {want}"
                        )


# --- Processes -------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Should this script itself be killed outright, what it started goes too.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(pod, memberd, log_path):
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [memberd] + pod.argv[1:],
            env=pod.env,  # the pod's alone: nothing of the caller's environment leaks in
            cwd=pod.dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def log_tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError:
        return ""
    return "".join("      | " + line for line in tail)


def stop(processes):
    """SIGTERM, as the kubelet sends; SIGKILL to any still there STOP_WITHIN_SECS later."""
    running = [(n, p) for n, p in processes if p.poll() is None]
    for _, p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WITHIN_SECS
    for name, p in running:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            say(f"{name} was still running {STOP_WITHIN_SECS} s after SIGTERM; killed")
    return len(running)


def port_free(address, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --- Probes, as the kubelet makes them --------------------------------------------------------

# No proxy: every address asked is a loopback one.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_probe(address, port, path, timeout):
    try:
        with HTTP.open(f"http://{address}:{port}{path}", timeout=timeout) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError as e:
        return False, str(getattr(e, "reason", e))
    return 200 <= status < 400, f"HTTP {status}"


def tcp_probe(address, port, timeout):
    try:
        socket.create_connection((address, port), timeout).close()
    except OSError as e:
        return False, str(e)
    return True, "connected"


def grpc_probe(address, port, service, timeout):
    """grpc.health.v1.Health/Check over HTTP/2 without TLS: SERVING passes, anything else
    (another status, an error, no answer) fails."""

    def frame(kind, flags, stream, payload=b""):
        head = len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big")
        return head + payload

    def field(name, value):  # HPACK: literal, not indexed, new name, no Huffman coding
        name, value = name.encode(), value.encode()
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    headers = b"".join(
        field(k, v)
        for k, v in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/grpc.health.v1.Health/Check"),
            (":authority", f"{address}:{port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
    )
    request = (b"\x0a" + bytes([len(service)]) + service.encode()) if service else b""
    body = b"\x00" + len(request).to_bytes(4, "big") + request
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    data = b""
    try:
        with socket.create_connection((address, port), timeout) as s:
            s.settimeout(timeout)
            s.sendall(preface + frame(4, 0, 0) + frame(1, 4, 1, headers) + frame(0, 1, 1, body))
            buffer = b""

            def read(n):
                nonlocal buffer
                while len(buffer) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise OSError("the connection was closed")
                    buffer += chunk
                out, buffer = buffer[:n], buffer[n:]
                return out

            while True:
                head = read(9)
                length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
                stream = int.from_bytes(head[5:], "big") & 0x7FFFFFFF
                payload = read(length)
                if kind == 4 and not flags & 1:  # SETTINGS
                    s.sendall(frame(4, 1, 0))
                elif kind == 6 and not flags & 1:  # PING
                    s.sendall(frame(6, 1, 0, payload))
                elif kind == 7:
                    return False, "GOAWAY"
                elif stream == 1 and kind == 3:
                    return False, "RST_STREAM"
                elif stream == 1 and kind == 0:  # DATA
                    if flags & 8:
                        payload = payload[1 : len(payload) - payload[0]]
                    data += payload
                    if flags & 1:
                        break
                elif stream == 1 and kind == 1 and flags & 1:  # trailers
                    break
    except OSError as e:
        return False, str(e)
    if len(data) < 5:
        return False, "no HealthCheckResponse (an error status)"
    message = data[5 : 5 + int.from_bytes(data[1:5], "big")]
    # HealthCheckResponse { status: SERVING }: field 1, varint 1.
    if message == b"\x08\x01":
        return True, "SERVING"
    return False, f"HealthCheckResponse {message.hex()} (not SERVING)"


def probe(pod, spec):
    timeout = spec.get("timeoutSeconds", 1)
    if "httpGet" in spec:
        get = spec["httpGet"]
        if get.get("scheme", "HTTP") != "HTTP" or get.get("host") or get.get("httpHeaders"):
            raise Failure(f"{pod.name}: an httpGet probe with a scheme, host or headers "
                          "(not handled)")
        return http_probe(pod.address, pod.port(get["port"]), get.get("path", "/"), timeout)
    if "grpc" in spec:
        port = pod.port(spec["grpc"]["port"])
        return grpc_probe(pod.address, port, spec["grpc"].get("service", ""), timeout)
    if "tcpSocket" in spec:
        return tcp_probe(pod.address, pod.port(spec["tcpSocket"]["port"]), timeout)
    raise Failure(f"{pod.name}: a probe of a kind the boot test does not handle: {', '.join(spec)}")


def describe(spec):
    if "httpGet" in spec:
        return f"GET {spec['httpGet'].get('path', '/')} on {spec['httpGet']['port']}"
    if "grpc" in spec:
        return f"gRPC health on {spec['grpc']['port']}"
    if "tcpSocket" in spec:
        return f"TCP {spec['tcpSocket']['port']}"
    return ", ".join(spec)


# --- Through the gateway ---------------------------------------------------------------------


def call(base, method, path, body=None, token=None, key=None, within=10.0):
    """One request, expecting 200. A 5xx answer or no answer is asked again until `within`
    seconds have passed (a process's first call to another may still be connecting); any
    other answer is final."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    deadline = time.monotonic() + within
    while True:
        request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
        try:
            with HTTP.open(request, timeout=10) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        except OSError as e:
            status, text = None, str(getattr(e, "reason", e))
        if status == 200:
            return json.loads(text) if text else {}
        if (status is None or status >= 500) and time.monotonic() < deadline:
            time.sleep(POLL_SECS)
            continue
        raise Failure(f"{method} {path} through the gateway: {status or 'no answer'}: {text[:600]}")


def journey(gateway, password):
    base = f"http://{gateway}"
    login = call(base, "POST", "/v1/auth/login",
                 {"tenant": "*", "username": "admin", "password": password})
    token = login.get("access_token")
    if not token:
        raise Failure(f"the admin's login gave no access_token: {login}")
    say("logged in as admin (tenant *)")
    call(base, "POST", "/v1/tenants", {"id": "acme", "name": "Acme"}, token, "boot-tenant")
    say("created tenant acme")
    alice = "/v1/tenants/acme/members/alice"
    call(base, "POST", f"{alice}/wallet", None, token, "boot-wallet")
    say("opened alice's wallet")
    order = {
        "order_id": "A-1",
        "order_total": 25000,
        "lines": [{"sku": "tea", "category": "food", "amount": 25000}],
    }
    call(base, "POST", f"{alice}/earnings", order, token, "boot-earn")
    balance = call(base, "GET", f"{alice}/balance", None, token)
    points = balance.get("points_available")
    if points != 250:
        raise Failure(f"after an earn on 250.00 alice has points_available {points}, "
                      f"not 250: {balance}")
    say("earned on an order of 250.00; the balance shows points_available 250")
    return points


# --- The run ---------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", required=True, help="the output of helm template")
    parser.add_argument("--memberd", required=True, help="the binary that stands for the image's")
    parser.add_argument("--logs", required=True, help="where <target>.log are written")
    parser.add_argument("--dockerfile", default="Dockerfile")
    parser.add_argument("--started", type=float, default=time.time(),
                        help="when the run began (seconds since the epoch), for the summary")
    args = parser.parse_args()
    # tests/k8s/boot.sh's trap stops this with SIGTERM: unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global WORK
    work = WORK = tempfile.mkdtemp(prefix="memberd-boot.")
    processes = []
    summary = None
    try:
        summary = run(args, os.path.abspath(args.memberd), work, processes)
    except Failure as e:
        print(f"\nFAILED: {e}", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if any(p.poll() is None for _, p in processes):
            step("stopping the processes it started (SIGTERM)")
            say(f"{stop(processes)} stopped")
        shutil.rmtree(work, ignore_errors=True)
    if summary is None:
        return 1
    print(f"\n{summary}; {time.time() - args.started:.0f} s in all", flush=True)
    return 0


def run(args, memberd, work, processes):
    deployments, configmaps, hook = load_render(args.render)
    secret_map = secret_values()
    ctx = {
        "work": work,
        "configmaps": configmaps,
        "secrets": secret_map,
        "entrypoint": image_entrypoint(args.dockerfile),
    }
    os.makedirs(args.logs, exist_ok=True)

    pods = []
    for d in deployments:
        name = f"Deployment {d['metadata']['name']}"
        target = d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        if target not in ADDRESSES:
            raise Failure(f"{name} is component {target}, which has no address in ADDRESSES")
        if d["spec"].get("replicas", 1) != 1:
            raise Failure(f"{name} has {d['spec']['replicas']} replicas; boot-values.yaml sets 1")
        pods.append(Pod(name, target, ADDRESSES[target], d["spec"]["template"]["spec"], ctx))
    check_endpoints(pods)
    for pod in pods:
        for port in sorted(set(pod.ports.values())):
            if not port_free(pod.address, port):
                raise Failure(f"{pod.address}:{port} ({pod.target}) is taken: "
                              "is another boot test running?")

    migrate = Pod(f"Job {hook['metadata']['name']}", "migrate", None,
                  hook["spec"]["template"]["spec"], ctx)
    step(f"{migrate.name}, the pre-install hook, as a process")
    say(f"$WORK is {work}, removed at the end")
    say(shown(" ".join(migrate.argv)))
    for note in migrate.notes:
        say(f"  {note}")
    log_path = os.path.join(args.logs, "migrate.log")
    started = time.monotonic()
    job = spawn(migrate, memberd, log_path)
    processes.append(("migrate", job))
    try:
        code = job.wait(timeout=MIGRATE_WITHIN_SECS)
    except subprocess.TimeoutExpired:
        raise Failure(f"{migrate.name} was still running after {MIGRATE_WITHIN_SECS} s "
                      f"({log_path}):\n{log_tail(log_path)}") from None
    if code != 0:
        raise Failure(f"{migrate.name} exited with {code} ({log_path}):\n{log_tail(log_path)}")
    say(f"exited 0 after {time.monotonic() - started:.1f} s (log: {log_path})")

    step(f"every Deployment's container as a process of {memberd}")
    started = time.monotonic()
    running = {}
    for pod in pods:
        log_path = os.path.join(args.logs, f"{pod.target}.log")
        say(f"{pod.target} at {pod.address}: {shown(' '.join(pod.argv))}  (log: {log_path})")
        for note in pod.notes:
            say(f"  {note}")
        processes.append((pod.target, spawn(pod, memberd, log_path)))
        running[pod.target] = (pod, processes[-1][1], log_path)

    step("every probe as rendered (startup, liveness, readiness) passes "
         f"within {READY_WITHIN_SECS} s")
    pending = {}
    for target, (pod, _, _) in running.items():
        if "readinessProbe" not in pod.container:
            raise Failure(f"{pod.name} has no readinessProbe")
        pending[target] = [k for k in PROBES if k in pod.container]
    ready_at, last = {}, {}
    while pending:
        for target in list(pending):
            pod, process, log_path = running[target]
            if process.poll() is not None:
                raise Failure(f"{pod.name} exited with {process.returncode} before it was ready "
                              f"({log_path}):\n{log_tail(log_path)}")
            for kind in list(pending[target]):
                ok, last[(target, kind)] = probe(pod, pod.container[kind])
                if ok:
                    pending[target].remove(kind)
            if not pending[target]:
                del pending[target]
                ready_at[target] = time.monotonic() - started
                probes = "; ".join(
                    f"{k[:-5]}: {describe(pod.container[k])}" for k in PROBES if k in pod.container
                )
                say(f"{target} ready after {ready_at[target]:.1f} s ({probes})")
        if not pending:
            break
        if time.monotonic() - started > READY_WITHIN_SECS:
            lines = []
            for target, kinds in pending.items():
                pod, _, log_path = running[target]
                for kind in kinds:
                    lines.append(f"{target} {kind} ({describe(pod.container[kind])} at "
                                 f"{pod.address}): {last.get((target, kind))}")
                lines.append(f"{target}'s log ({log_path}):\n{log_tail(log_path)}")
            raise Failure(f"not ready within {READY_WITHIN_SECS} s:\n  " + "\n  ".join(lines))
        time.sleep(POLL_SECS)
    ready_secs = max(ready_at.values())

    if "gateway" not in running:
        raise Failure("the render has no gateway Deployment to go through")
    gateway_pod = running["gateway"][0]
    gateway = f"{gateway_pod.address}:{gateway_pod.port('http')}"
    step(f"through the gateway at {gateway}: log in, a tenant, a wallet, an earn, the balance")
    points = journey(gateway, secret_map[("memberd-secrets", "bootstrap-password")])
    checked = 0
    for target, (pod, process, log_path) in running.items():
        if process.poll() is not None:
            raise Failure(f"{pod.name} exited with {process.returncode} ({log_path}):\n"
                          f"{log_tail(log_path)}")
        if pod.read_only_data_dir:
            checked += 1
            rendered, local = pod.read_only_data_dir
            written = sorted(os.listdir(local))
            if written:
                raise Failure(
                    f"{pod.name} wrote {', '.join(written)} into its data directory; in the pod, "
                    f"{rendered} is on the read-only root filesystem, with no volume mounted"
                )
    if checked:
        say(f"{checked} processes wrote nothing into their data directories "
            "(read-only in the pods)")

    return (f"boot: {len(pods)} processes ready in {ready_secs:.0f} s; "
            f"earn of {points} points through the gateway")


if __name__ == "__main__":
    sys.exit(main())
