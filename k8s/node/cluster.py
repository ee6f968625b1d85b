"""Start and stop a one-node cluster whose every process lives in its own network namespace.

Layout (``NODE_DIR``, default ``.run/node``; binaries from ``scripts/k8s-testenv/build.sh
--node``; Debian's containerd, runc and CNI plugins)::

    netns rto-node
      lo        etcd 127.0.0.1:2379, controller-manager and scheduler talk to 127.0.0.1:6443
      cni0      10.244.0.1/24: the pods' gateway and the node's address: kube-apiserver :6443
                (advertised, so the `kubernetes` Service reaches it), kubelet :10250 (logs,
                exec), CoreDNS :53 (the pods' nameserver)
    host        127.0.0.1:<port> -> a unix socket -> 10.244.0.1:6443 (two socat relays): the
                only thing on the host's network, on loopback

Everything runs with ``nsenter --net=/run/netns/rto-node``, never ``ip netns exec`` (that
remounts /sys, and the kubelet then finds no cgroup mounts). Pods get 10.244.0.0/24 from the CNI
bridge plugin (host-local IPAM with its data under NODE_DIR), Services 10.96.0.0/24 from
kube-proxy in nftables mode with every conntrack setting 0 (so it changes no global sysctl) and
masquerading all Service traffic (pods on one bridge then reach each other through a ClusterIP
without br_netfilter). Storage: a default StorageClass ``local-path`` served by a small
provisioner (``python -m k8s.node provisioner``) that binds each claim to a hostPath volume under
NODE_DIR/volumes.

Host side effects, undone by ``down`` (idempotent; it also cleans up after an interrupted
``up``): the kubelet sets vm.overcommit_memory, kernel.panic and kernel.panic_on_oops (recorded
before and restored, at once after start and again at the end); it creates
/var/lib/kubelet/device-plugins and /var/log/containers, and containerd's shims and CNI use
/run/containerd and /var/lib/cni: each is removed if it did not exist before. Processes stop in
reverse order by the PIDs in NODE_DIR/state.json (checked against their command line), then any
container left is killed, mounts under NODE_DIR are unmounted, the cgroups /sys/fs/cgroup/*/rto-node
removed and the namespace deleted.
"""

from __future__ import annotations

import base64
import contextlib
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "k8s-testenv" / "build.sh"
IMAGES_SCRIPT = ROOT / "scripts" / "images" / "build.py"
NETNS = "rto-node"
NODE_NAME = "rto-node"
BRIDGE = "cni0"
NODE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"
API_PORT = 6443
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "localhost/realtimeorder-node/pause:1"
CGROUP_CONTROLLERS = (
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "memory",
    "pids",
    "systemd",
    "unified",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
)
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
    "/etc/cni",
    "/opt/cni",
    "/run/netns",
)
REQUIRED_COMMANDS = ("containerd", "runc", "ctr", "socat", "nsenter", "ip", "nft", "openssl")
START_TIMEOUT = 180.0


class NodeError(RuntimeError):
    """The node could not be started or stopped; the message says why and where the logs are."""


def log(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


def node_dir() -> Path:
    return Path(os.environ.get("NODE_DIR") or ROOT / ".run" / "node").resolve()


def bin_dir() -> Path:
    out = subprocess.run(
        [str(BUILD_SCRIPT), "--print-bin-dir"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def run(args: Sequence[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


def in_netns(args: Sequence[str]) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{NETNS}", "--", *args]


# ---- state ------------------------------------------------------------------------------------


class State:
    """NODE_DIR/state.json: what ``down`` needs, written as ``up`` goes."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "state.json"
        self.data: dict[str, Any] = {}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())
        self.data.setdefault("processes", [])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)

    def add_process(self, name: str, pid: int, marker: str) -> None:
        self.data["processes"].append({"name": name, "pid": pid, "marker": marker})
        self.save()


# ---- certificates -----------------------------------------------------------------------------


def openssl(*args: str) -> None:
    run(["openssl", *args])


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        "-subj", "/CN=realtimeorder-node-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
    )  # fmt: skip
    sans = (
        f"IP:127.0.0.1,IP:{NODE_IP},IP:{KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        f"DNS:kubernetes.default.svc.{CLUSTER_DOMAIN}"
    )
    sign(pki, "apiserver", "/CN=kube-apiserver", "serverAuth", sans)
    # The API server's client certificate towards the kubelet (logs, exec, port-forward).
    sign(pki, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client",
         "clientAuth", None)  # fmt: skip
    openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def sign(pki: Path, name: str, subject: str, usage: str, sans: str | None) -> None:
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", subject,
        "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"),
    )  # fmt: skip
    ext = pki / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n" + (f"subjectAltName={sans}\n" if sans else "")
    )
    openssl(
        "x509", "-req", "-sha256", "-days", "30", "-in", str(pki / f"{name}.csr"),
        "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"), "-CAcreateserial",
        "-extfile", str(ext), "-out", str(pki / f"{name}.crt"),
    )  # fmt: skip


def write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": NODE_NAME,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": NODE_NAME, "context": {"cluster": NODE_NAME, "user": "admin"}}],
        "current-context": NODE_NAME,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# ---- processes --------------------------------------------------------------------------------


def start(state: State, name: str, args: Sequence[str], logs: Path, netns: bool = True) -> int:
    """Start a daemon in its own session (it outlives ``up``) and record its PID."""
    argv = in_netns(args) if netns else list(args)
    with (logs / f"{name}.log").open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=logs,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    # nsenter execs the command, so the PID is the daemon's own.
    state.add_process(name, process.pid, Path(args[0]).name)
    return process.pid


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int, marker: str) -> bool:
    return marker in cmdline(pid)


def stop_pid(pid: int, marker: str, timeout: float = 20.0) -> None:
    if not alive(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid, marker):
        time.sleep(0.2)
    if alive(pid, marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def wait_until(what: str, check: Any, timeout: float, logfile: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = str(exc)
        time.sleep(0.5)
    tail = ""
    if logfile is not None and logfile.is_file():
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-25:])
    raise NodeError(f"{what} not ready after {timeout:.0f}s {last}\n{tail}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- the API from the host --------------------------------------------------------------------


class Api:
    def __init__(self, server: str, token: str, ca: Path) -> None:
        self.server = server
        self.token = token
        self.context = ssl.create_default_context(cafile=str(ca))
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context)
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self.opener.open(req, timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if text.startswith("{") else text

    def ready(self) -> bool:
        return bool(self.request("GET", "/readyz") == "ok")

    def node_ready(self) -> bool:
        node = self.request("GET", f"/api/v1/nodes/{NODE_NAME}")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def apply(self, path: str, body: dict[str, Any]) -> None:
        try:
            self.request("POST", path, body)
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise


# ---- host side effects ------------------------------------------------------------------------


def read_sysctls() -> dict[str, str]:
    return {key: Path(f"/proc/sys/{key}").read_text().strip() for key in KUBELET_SYSCTLS}


def restore_sysctls(saved: dict[str, str]) -> None:
    for key, value in saved.items():
        path = Path(f"/proc/sys/{key}")
        if path.read_text().strip() != value:
            path.write_text(value)
            log(f"restored {key.replace('/', '.')}={value}")


def cgroup_dirs() -> list[Path]:
    return [
        Path("/sys/fs/cgroup") / c / NETNS
        for c in CGROUP_CONTROLLERS
        if (Path("/sys/fs/cgroup") / c).is_dir()
    ]


# cgroup v1 weighs the node's whole cgroup like one process of the host's: on a machine busy
# with other work every pod then starves (an exec probe took 30 s). Weigh the pods together like
# the dozen-odd processes they are.
NODE_CPU_SHARES = 16384


def make_cgroups() -> None:
    for directory in cgroup_dirs():
        directory.mkdir(exist_ok=True)
        if directory.parent.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (directory / f).write_text((directory.parent / f).read_text())
        if directory.parent.name == "cpu" and (directory / "cpu.shares").exists():
            (directory / "cpu.shares").write_text(str(NODE_CPU_SHARES))


def remove_cgroups() -> None:
    for top in cgroup_dirs():
        if not top.is_dir():
            continue
        for directory in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
        if top.is_dir():
            log(f"WARNING: {top} still exists (processes left in it?)")


# ---- configuration files ----------------------------------------------------------------------


def write_configs(d: Path, bins: Path) -> None:
    (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
    (d / "cni" / "net.d" / "10-rto.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "0.4.0",
                "name": "rto-node",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": BRIDGE,
                        "isGateway": True,
                        "isDefaultGateway": True,
                        "hairpinMode": True,
                        "ipMasq": False,
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                            "dataDir": str(d / "cni" / "ipam"),
                        },
                    }
                ],
            },
            indent=2,
        )
    )
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    (d / "containerd.toml").write_text(
        f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
oom_score = 0
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni/net.d"
"""
    )
    (d / "resolv.conf").write_text("")
    (d / "kubelet.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "kubelet.config.k8s.io/v1beta1",
                "kind": "KubeletConfiguration",
                "address": NODE_IP,
                "port": 10250,
                "readOnlyPort": 0,
                "cgroupDriver": "cgroupfs",
                "cgroupRoot": f"/{NETNS}",
                "failSwapOn": False,
                "makeIPTablesUtilChains": False,
                "oomScoreAdj": 0,
                "podLogsDir": str(d / "pod-logs"),
                "clusterDNS": [NODE_IP],
                "clusterDomain": CLUSTER_DOMAIN,
                "resolvConf": str(d / "resolv.conf"),
                "containerRuntimeEndpoint": f"unix://{d}/containerd.sock",
                "imageGCHighThresholdPercent": 100,
                "imageGCLowThresholdPercent": 99,
                "evictionHard": {
                    "memory.available": "100Mi",
                    "nodefs.available": "1%",
                    "nodefs.inodesFree": "1%",
                    "imagefs.available": "1%",
                },
                "authentication": {
                    "anonymous": {"enabled": False},
                    "webhook": {"enabled": True},
                    "x509": {"clientCAFile": str(d / "pki" / "ca.crt")},
                },
                "authorization": {"mode": "Webhook"},
                "serializeImagePulls": False,
                "kernelMemcgNotification": False,
            },
            indent=2,
        )
    )
    (d / "kube-proxy.yaml").write_text(
        json.dumps(
            {
                "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                "kind": "KubeProxyConfiguration",
                "mode": "nftables",
                "clientConnection": {"kubeconfig": str(d / "kubeconfig-node")},
                "hostnameOverride": NODE_NAME,
                "clusterCIDR": POD_CIDR,
                "bindAddress": NODE_IP,
                "healthzBindAddress": "127.0.0.1:10256",
                "metricsBindAddress": "127.0.0.1:10249",
                "conntrack": {
                    "maxPerCore": 0,
                    "min": 0,
                    "tcpEstablishedTimeout": "0s",
                    "tcpCloseWaitTimeout": "0s",
                    "udpTimeout": "0s",
                    "udpStreamTimeout": "0s",
                },
                "nftables": {"masqueradeAll": True},
            },
            indent=2,
        )
    )
    (d / "Corefile").write_text(
        f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:8181
    ready 127.0.0.1:8182
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {d}/kubeconfig-node {NODE_NAME}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
    )
    del bins


# ---- images -----------------------------------------------------------------------------------


def images_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rto_images_build", IMAGES_SCRIPT)
    if spec is None or spec.loader is None:
        raise NodeError(f"cannot load {IMAGES_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def build_pause_image(d: Path) -> Path:
    """The sandbox image: Debian's static busybox sleeping, as user 65535 (cached)."""
    images = images_module()
    cache: Path = images.cache_dir()
    archive = cache / "pause.oci.tar"
    if archive.is_file():
        return archive
    engine = images.Buildah()
    work = Path(tempfile_dir(cache))
    try:
        run(["apt-get", "download", "busybox-static"], cwd=work)
        deb = next(work.glob("busybox-static_*.deb"))
        run(["dpkg-deb", "-x", str(deb), str(work / "x")])
        ctr = engine.buildah("from", "scratch", capture=True).strip()
        try:
            mnt = Path(engine.buildah("mount", ctr, capture=True).strip())
            shutil.copy2(work / "x" / "bin" / "busybox", mnt / "busybox")
            engine.buildah("umount", ctr)
            engine.buildah(
                "config", "--entrypoint", '["/busybox", "sleep", "infinity"]',
                "--user", "65535:65535", ctr,
            )  # fmt: skip
            engine.buildah("commit", "--quiet", "--rm", ctr, PAUSE_IMAGE, capture=True)
        except BaseException:
            subprocess.run(engine._cmd("rm", ctr), capture_output=True, check=False)
            raise
        engine.export(PAUSE_IMAGE, archive)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    del d
    return archive


def tempfile_dir(parent: Path) -> str:
    import tempfile

    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="pause-", dir=parent)


def import_archive(d: Path, archive: Path) -> None:
    run(["ctr", "-a", str(d / "containerd.sock"), "-n", "k8s.io", "images", "import",
         "--no-unpack=false", str(archive)])  # fmt: skip


def load_images(refs: Sequence[str]) -> None:
    """Export images from the image builder's storage and import them into the node."""
    d = node_dir()
    if not (d / "containerd.sock").exists():
        raise NodeError("the node is not running: make cluster-up")
    images = images_module()
    engine = images.engine()
    with images.host_paths_restored():
        for ref in refs:
            archive = d / "images" / (ref.replace("/", "_").replace(":", "_") + ".tar")
            archive.parent.mkdir(parents=True, exist_ok=True)
            start_time = time.monotonic()
            engine.export(ref, archive)
            import_archive(d, archive)
            archive.unlink()
            log(f"loaded {ref} in {time.monotonic() - start_time:.0f}s")


# ---- up / down --------------------------------------------------------------------------------


def check_prerequisites() -> Path:
    if os.geteuid() != 0:
        raise NodeError("the node needs root (network namespace, cgroups, containerd)")
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if missing:
        raise NodeError(
            f"missing {', '.join(missing)}: apt-get install containerd runc "
            "containernetworking-plugins socat nftables openssl"
        )
    bins = bin_dir()
    tools = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
             "kube-proxy", "coredns", "kubectl")  # fmt: skip
    absent = [t for t in tools if not (bins / t).is_file()]
    if absent:
        log(f"building {', '.join(absent)} (scripts/k8s-testenv/build.sh --node; long once)")
        subprocess.run([str(BUILD_SCRIPT), "--node"], check=True)
    return bins


def up() -> None:
    d = node_dir()
    state = State(d)
    if state.data["processes"] and any(
        alive(p["pid"], p["marker"]) for p in state.data["processes"]
    ):
        raise NodeError(f"a node is already running (state in {d}): make cluster-down first")
    bins = check_prerequisites()
    # Whatever an earlier, interrupted run left behind goes first.
    down(quiet=True)
    if Path(f"/run/netns/{NETNS}").exists():
        raise NodeError(f"network namespace {NETNS} exists and is not ours to remove")
    started = time.monotonic()
    state = State(d)
    state.data = {
        "processes": [],
        "sysctls": read_sysctls(),
        "absent_host_paths": [p for p in HOST_PATHS if not os.path.lexists(p)],
        "netns_before": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
    }
    state.save()
    logs = d / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        _up(d, bins, state, logs)
    except BaseException:
        log(f"start failed; cleaning up (logs in {logs})")
        down(quiet=True, keep_logs=True)
        raise
    log(f"node Ready in {time.monotonic() - started:.0f}s")


def _up(d: Path, bins: Path, state: State, logs: Path) -> None:
    pause = build_pause_image(d)
    run(["ip", "netns", "add", NETNS])
    state.data["netns"] = NETNS
    state.save()
    run(in_netns(["ip", "link", "set", "lo", "up"]))
    run(in_netns(["ip", "link", "add", BRIDGE, "type", "bridge"]))
    run(in_netns(["ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE]))
    run(in_netns(["ip", "link", "set", BRIDGE, "up"]))
    # The node's own connections to a ClusterIP (the relays of `expose`) need a route before
    # kube-proxy's output rules can translate them.
    run(in_netns(["ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP]))
    make_cgroups()

    pki = d / "pki"
    make_pki(pki)
    token = secrets.token_hex(24)
    (d / "tokens.csv").write_text(f'{token},admin,admin-uid,"system:masters"\n')
    (d / "tokens.csv").chmod(0o600)
    write_kubeconfig(d / "kubeconfig-node", f"https://{NODE_IP}:{API_PORT}", pki / "ca.crt", token)
    write_configs(d, bins)

    start(state, "etcd", [
        str(bins / "etcd"), "--name=node", f"--data-dir={d / 'etcd'}",
        "--listen-client-urls=http://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=node=http://127.0.0.1:2380",
        "--unsafe-no-fsync=true", "--log-level=warn",
    ], logs)  # fmt: skip
    start(state, "kube-apiserver", [
        str(bins / "kube-apiserver"), "--etcd-servers=http://127.0.0.1:2379",
        "--bind-address=0.0.0.0", f"--advertise-address={NODE_IP}",
        f"--secure-port={API_PORT}", f"--cert-dir={d / 'apiserver-certs'}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={d / 'tokens.csv'}",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--authorization-mode=Node,RBAC", "--allow-privileged=true",
        "--enable-admission-plugins=NodeRestriction", "--profiling=false", "--v=1",
    ], logs)  # fmt: skip

    # The host's way in: 127.0.0.1:<port> -> unix socket -> the API server in the namespace.
    sock = d / "apiserver.sock"
    sock.unlink(missing_ok=True)
    start(state, "relay-netns", ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                 f"TCP:{NODE_IP}:{API_PORT}"], logs)  # fmt: skip
    port = int(os.environ.get("NODE_API_PORT") or free_port())
    start(state, "relay-host", ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                                f"UNIX-CONNECT:{sock}"], logs, netns=False)  # fmt: skip
    server = f"https://127.0.0.1:{port}"
    write_kubeconfig(d / "kubeconfig", server, pki / "ca.crt", token)
    state.data["server"] = server
    state.save()
    api = Api(server, token, pki / "ca.crt")
    wait_until("kube-apiserver", api.ready, START_TIMEOUT, logs / "kube-apiserver.log")

    start(state, "kube-controller-manager", [
        str(bins / "kube-controller-manager"), f"--kubeconfig={d / 'kubeconfig-node'}",
        "--leader-elect=false", "--controllers=*", "--bind-address=127.0.0.1",
        f"--cert-dir={d / 'controller-manager-certs'}",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}", "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "--v=1",
    ], logs)  # fmt: skip
    start(state, "kube-scheduler", [
        str(bins / "kube-scheduler"), f"--kubeconfig={d / 'kubeconfig-node'}",
        "--leader-elect=false", "--bind-address=127.0.0.1", "--profiling=false", "--v=1",
    ], logs)  # fmt: skip
    start(state, "containerd", ["containerd", "--config", str(d / "containerd.toml")], logs)
    wait_until(
        "containerd",
        lambda: (
            run(["ctr", "-a", str(d / "containerd.sock"), "version"], check=False).returncode == 0
        ),
        60,
        logs / "containerd.log",
    )
    import_archive(d, pause)
    # The kubelet authenticates with the admin token: a dev node, with one user.
    start(state, "kubelet", [
        str(bins / "kubelet"), f"--config={d / 'kubelet.yaml'}",
        f"--kubeconfig={d / 'kubeconfig-node'}", f"--root-dir={d / 'kubelet'}",
        f"--cert-dir={d / 'kubelet-pki'}", f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}", "--v=1",
    ], logs)  # fmt: skip
    start(state, "kube-proxy", [
        str(bins / "kube-proxy"), f"--config={d / 'kube-proxy.yaml'}", "--v=1",
    ], logs)  # fmt: skip
    start(state, "coredns", [str(bins / "coredns"), "-conf", str(d / "Corefile")], logs)
    wait_until("the node", api.node_ready, START_TIMEOUT, logs / "kubelet.log")
    restore_sysctls(state.data["sysctls"])

    api.apply(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "realtimeorder.io/local-path",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        },
    )
    start(state, "provisioner", [
        sys.executable, "-m", "k8s.node.provisioner", "--kubeconfig", str(d / "kubeconfig"),
        "--volumes", str(d / "volumes"),
    ], logs, netns=False)  # fmt: skip
    log(f"API server {server}; export KUBECONFIG={d / 'kubeconfig'}")


def expose(name: str, target: str, port: int | None = None) -> int:
    """Serve ``target`` (host:port as seen inside the node's namespace, e.g. a Service's
    ClusterIP) on the host's 127.0.0.1:<port>, through the same two relays as the API server;
    ``down`` stops them with the node. Returns the host port."""
    d = node_dir()
    state = State(d)
    if not state.data["processes"]:
        raise NodeError("the node is not running: make cluster-up")
    logs = d / "logs"
    sock = d / f"{name}.sock"
    sock.unlink(missing_ok=True)
    start(state, f"relay-{name}-netns", ["socat", f"UNIX-LISTEN:{sock},fork,mode=600",
                                         f"TCP:{target}"], logs)  # fmt: skip
    port = port or free_port()
    start(state, f"relay-{name}-host", ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                                        f"UNIX-CONNECT:{sock}"], logs, netns=False)  # fmt: skip
    wait_until(f"the relay to {target}", lambda: _listening(port), 10)
    return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pod_container_pids(d: Path) -> list[int]:
    """containerd shims started for this node, and everything under them."""
    sock = str(d / "containerd.sock")
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and "containerd-shim" in cmdline(int(p.name))
        and sock in cmdline(int(p.name))
    ]


def down(quiet: bool = False, keep_logs: bool = True) -> None:
    """Stop everything ``up`` started and undo its host side effects; safe to run any time."""
    d = node_dir()
    state = State(d)
    processes = list(reversed(state.data.get("processes", [])))
    if not quiet:
        log("stopping the node" if processes else "no node state; cleaning up what may be left")
    sock = d / "containerd.sock"
    containerd = next((p for p in processes if p["name"] == "containerd"), None)
    # The kubelet first (it would restart what we kill), then every pod's containers.
    for p in processes:
        if p["name"] in ("provisioner", "kubelet"):
            stop_pid(p["pid"], p["marker"])
    if containerd and alive(containerd["pid"], containerd["marker"]):
        kill_all_tasks(sock)
    for p in processes:
        stop_pid(p["pid"], p["marker"])
    for pid in pod_container_pids(d):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    unmount_under(d)
    unmount_pod_netns(state)
    if Path(f"/run/netns/{NETNS}").exists():
        run(["ip", "netns", "del", NETNS], check=False)
    remove_cgroups()
    if "sysctls" in state.data:
        restore_sysctls(state.data["sysctls"])
    for path in state.data.get("absent_host_paths", []):
        if is_mount(path) and not os.listdir(path):
            # ip netns bind-mounts /run/netns onto itself to share it.
            run(["umount", path], check=False)
        if os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(path)
    for name in ("containerd", "kubelet", "etcd", "cni", "volumes", "images", "pod-logs"):
        shutil.rmtree(d / name, ignore_errors=True)
    if state.path.exists():
        state.path.unlink()
    del keep_logs
    if not quiet:
        log("node stopped; nothing left running")


def is_mount(path: str) -> bool:
    """A mount point, bind mounts of a folder onto itself included (os.path.ismount misses them)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return any(line.split()[4] == path for line in lines)


def kill_all_tasks(sock: Path) -> None:
    ctr = ["ctr", "-a", str(sock), "-n", "k8s.io"]
    tasks = run([*ctr, "tasks", "ls", "-q"], check=False).stdout.split()
    for task in tasks:
        run([*ctr, "tasks", "kill", "-a", "-s", "SIGKILL", task], check=False)
    deadline = time.monotonic() + 15
    for task in tasks:
        while time.monotonic() < deadline:
            if run([*ctr, "tasks", "rm", "-f", task], check=False).returncode == 0:
                break
            time.sleep(0.3)


def unmount_under(d: Path) -> None:
    prefix = str(d) + "/"
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for target in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", target], check=False)


def unmount_pod_netns(state: State) -> None:
    """The pods' network namespaces containerd pinned under /run/netns (cni-...)."""
    netns_dir = Path("/run/netns")
    if not netns_dir.is_dir():
        return
    before = set(state.data.get("netns_before", []))
    for entry in netns_dir.iterdir():
        if entry.name.startswith("cni-") and entry.name not in before:
            run(["umount", str(entry)], check=False)
            entry.unlink(missing_ok=True)


def status() -> int:
    d = node_dir()
    state = State(d)
    if not state.data["processes"]:
        print("no node running")
        return 1
    for p in state.data["processes"]:
        print(f"{p['name']:<24} {p['pid']:>7}  {'up' if alive(p['pid'], p['marker']) else 'DOWN'}")
    print(f"KUBECONFIG={d / 'kubeconfig'}  ({state.data.get('server', '?')})")
    return 0


@contextlib.contextmanager
def node() -> Iterator[Path]:
    """``up`` for the duration of a with block (tests); ``down`` whatever happens."""
    try:
        up()
        yield node_dir() / "kubeconfig"
    finally:
        down()
