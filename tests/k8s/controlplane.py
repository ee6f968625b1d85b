"""A throwaway Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

The binaries come from ``scripts/k8s-testenv/build.sh`` (built from Go modules into a cache
directory outside the repository). Everything runs on free 127.0.0.1 ports under a work folder
given by the caller; there is no kubelet, so pods stay Pending, but Deployments get ReplicaSets,
namespaces finish deleting and garbage collection works.

Usage::

    from tests.k8s.controlplane import control_plane

    with control_plane(tmp_path) as cp:
        # cp.kubeconfig: a kubeconfig file (token auth, system:masters)
        # cp.server: "https://127.0.0.1:<port>", cp.token: the admin bearer token
        # cp.env(): os.environ plus KUBECONFIG, for kubectl/helm subprocesses
        ...

The API server authenticates with a static admin token (``--token-auth-file``) and authorizes
with RBAC; the controller-manager uses the same token. On exit every child is terminated and
waited for, and its ports are checked closed (``cp.pids`` and ``cp.ports`` name them).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BUILD_SCRIPT = "scripts/k8s-testenv/build.sh"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER = "admin"
REQUIRED_TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager")


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or stopped cleanly."""


class ToolsMissingError(ControlPlaneError):
    """The control-plane binaries have not been built yet."""


def tools_dir() -> Path:
    """The cache directory of ``scripts/k8s-testenv/build.sh`` (same environment logic)."""
    explicit = os.environ.get("RTO_K8S_TOOLS_DIR")
    if explicit:
        return Path(explicit)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "realtimeorder" / "k8s-testenv"


def tools_bin_dir() -> Path:
    """The directory holding etcd, kube-apiserver, kube-controller-manager, kubectl and helm."""
    return tools_dir() / "bin"


def tool_path(name: str) -> Path:
    """The path of one built binary; raises ToolsMissingError when it has not been built."""
    path = tools_bin_dir() / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolsMissingError(
            f"{name} not found in {tools_bin_dir()}: run {BUILD_SCRIPT} first "
            "(it builds etcd, kube-apiserver, kube-controller-manager, kubectl and helm "
            "from Go modules; set RTO_K8S_TOOLS_DIR to use another cache directory)"
        )
    return path


@dataclass(frozen=True)
class ControlPlane:
    """A running control plane, as yielded by :func:`control_plane`."""

    kubeconfig: Path
    server: str
    token: str
    ca_file: Path
    workdir: Path
    etcd_url: str
    pids: Mapping[str, int]
    ports: Mapping[str, tuple[int, ...]]
    bin_dir: Path = field(default_factory=tools_bin_dir)

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing here, the tools' bin dir first on PATH and
        loopback exempt from any proxy (for kubectl and helm subprocesses)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        for var in ("NO_PROXY", "no_proxy"):
            env[var] = ",".join(filter(None, [env.get(var, ""), "127.0.0.1", "localhost"]))
        return env


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: tuple[int, ...]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def listening_pids(port: int) -> set[int]:
    """The PIDs of the processes listening on a TCP port, read from /proc (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids: set[int] = set()
    if not inodes:
        return pids
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the thread that started it ends (Linux only).

    So a test process killed outright leaves no control plane behind; start the control plane
    from a thread that outlives its use (the main thread, as pytest fixtures do)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _run(args: Sequence[str]) -> None:
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        raise ControlPlaneError(f"{' '.join(args)} failed ({result.returncode}): {stderr}")


def _generate_pki(pki: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 signed by it, and a service-account key pair."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError("openssl is needed to generate the control plane's keys")
    pki.mkdir(parents=True, exist_ok=True)
    _run([
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "7",
        "-subj", "/CN=realtimeorder-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
    ])  # fmt: skip
    _run([
        openssl, "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-subj", "/CN=kube-apiserver",
        "-keyout", str(pki / "apiserver.key"), "-out", str(pki / "apiserver.csr"),
    ])  # fmt: skip
    (pki / "apiserver.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
    )
    _run([
        openssl, "x509", "-req", "-sha256", "-days", "7",
        "-in", str(pki / "apiserver.csr"), "-CA", str(pki / "ca.crt"),
        "-CAkey", str(pki / "ca.key"), "-CAcreateserial",
        "-extfile", str(pki / "apiserver.ext"), "-out", str(pki / "apiserver.crt"),
    ])  # fmt: skip
    _run([openssl, "genrsa", "-out", str(pki / "sa.key"), "2048"])
    _run([openssl, "rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")])


def _write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> None:
    """A kubeconfig (JSON, which every YAML loader reads) with the CA embedded."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "realtimeorder-test",
                "cluster": {"server": server, "certificate-authority-data": ca_data},
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": token}}],
        "contexts": [
            {
                "name": "realtimeorder-test",
                "context": {"cluster": "realtimeorder-test", "user": ADMIN_USER},
            }
        ],
        "current-context": "realtimeorder-test",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


def _start(name: str, args: Sequence[str], workdir: Path, ports: Sequence[int]) -> _Child:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return _Child(name=name, process=process, log=log, ports=tuple(ports))


def _wait_http_ok(
    child: _Child,
    url: str,
    timeout: float,
    context: ssl.SSLContext | None = None,
    token: str | None = None,
) -> None:
    """Poll url until it answers 200, failing early if the child exits."""
    # No proxy from the environment: these servers are on loopback.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        code = child.process.poll()
        if code is not None:
            raise ControlPlaneError(
                f"{child.name} exited with {code} while starting; log {child.log}:\n"
                + _tail(child.log)
            )
        request = urllib.request.Request(url)  # noqa: S310
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with opener.open(request, timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise ControlPlaneError(
        f"{child.name} not ready at {url} after {timeout:.0f}s ({last}); log {child.log}:\n"
        + _tail(child.log)
    )


def _stop(children: list[_Child], timeout: float = 20.0) -> None:
    """Terminate the children in reverse start order, wait on each, then check their ports closed.

    Each child leads its own process group; whatever is left in those groups is killed too. A
    port counts as closed once no process of those groups listens on it: the OS may hand a
    freed port to an unrelated program at once, which is not ours to stop.
    """
    for child in reversed(children):
        process = child.process
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait()
        else:
            process.wait()
    groups = {child.process.pid for child in children}
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)

    def ours(port: int) -> bool:
        return _port_open(port) and any(
            _process_group(pid) in groups for pid in listening_pids(port)
        )

    deadline = time.monotonic() + 10.0
    still_open = [(c.name, p) for c in children for p in c.ports]
    while still_open and time.monotonic() < deadline:
        still_open = [(name, port) for name, port in still_open if ours(port)]
        if still_open:
            time.sleep(0.2)
    if still_open:
        raise ControlPlaneError(f"ports still open after stopping the control plane: {still_open}")


@contextlib.contextmanager
def control_plane(workdir: Path, start_timeout: float = 120.0) -> Iterator[ControlPlane]:
    """Start etcd, kube-apiserver and kube-controller-manager under workdir; stop them on exit.

    Yields once the API server's /readyz and the controller-manager's /healthz answer ok.
    Logs are workdir/{etcd,kube-apiserver,kube-controller-manager}.log.
    """
    etcd_bin = tool_path("etcd")
    apiserver_bin = tool_path("kube-apiserver")
    kcm_bin = tool_path("kube-controller-manager")

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    _generate_pki(pki)

    token = secrets.token_hex(24)
    token_file = workdir / "tokens.csv"
    token_file.write_text(f'{token},{ADMIN_USER},admin-uid,"system:masters"\n')
    token_file.chmod(0o600)

    etcd_port, etcd_peer_port = free_port(), free_port()
    apiserver_port, kcm_port = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    server = f"https://127.0.0.1:{apiserver_port}"
    ca_file = pki / "ca.crt"
    kubeconfig = workdir / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, ca_file, token)

    tls = ssl.create_default_context(cafile=str(ca_file))
    children: list[_Child] = []
    try:
        etcd = _start(
            "etcd",
            [
                str(etcd_bin),
                "--name=default",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            workdir,
            [etcd_port, etcd_peer_port],
        )
        children.append(etcd)
        _wait_http_ok(etcd, f"{etcd_url}/health", start_timeout)

        apiserver = _start(
            "kube-apiserver",
            [
                str(apiserver_bin),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={apiserver_port}",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={ca_file}",
                f"--token-auth-file={token_file}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
            workdir,
            [apiserver_port],
        )
        children.append(apiserver)
        _wait_http_ok(apiserver, f"{server}/readyz", start_timeout, context=tls, token=token)

        kcm = _start(
            "kube-controller-manager",
            [
                str(kcm_bin),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--controllers=*",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={workdir / 'controller-manager-certs'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={ca_file}",
                f"--cluster-signing-cert-file={ca_file}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--profiling=false",
                "--v=1",
            ],
            workdir,
            [kcm_port],
        )
        children.append(kcm)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving certificate
        _wait_http_ok(kcm, f"https://127.0.0.1:{kcm_port}/healthz", start_timeout, insecure)

        yield ControlPlane(
            kubeconfig=kubeconfig,
            server=server,
            token=token,
            ca_file=ca_file,
            workdir=workdir,
            etcd_url=etcd_url,
            pids={child.name: child.process.pid for child in children},
            ports={child.name: child.ports for child in children},
        )
    finally:
        _stop(children)
