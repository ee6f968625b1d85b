"""Build every image RealTimeOrder ships, and smoke-check them; with Docker or with buildah.

    scripts/images/build.py [build] [--only services,operator,web] [--tag dev]   (make images)
    scripts/images/build.py smoke [--only ...] [--tag dev]                       (make images-smoke)
    scripts/images/build.py export IMAGE FILE                                    (an OCI archive)

Images (``localhost/`` names, so nothing suggests they came from a registry):

=============================================  ===========================================
``localhost/realtimeorder:TAG``                services/Dockerfile: every service and worker
``localhost/realtimeorder-operator:TAG``       operator/Dockerfile: the Kopf operator
``localhost/realtimeorder-user-app:TAG``       frontend/Dockerfile, APP=user-app
``localhost/realtimeorder-admin-dashboard:TAG`` frontend/Dockerfile, APP=admin-dashboard
=============================================  ===========================================

The web images are skipped, with a message saying so, while frontend/ has no buildable app.

**Engine.** Docker when a Docker daemon answers (``docker info``), else buildah
(``RTO_IMAGE_ENGINE=docker|buildah`` forces one). Docker pulls the Dockerfiles' default bases.
buildah pulls nothing: the bases are made here from Debian packages, as the official images are
not reachable without a registry:

- ``localhost/realtimeorder-base/python:3.11-bookworm``: ``debootstrap --variant=minbase`` with
  python3, python3-venv, python-is-python3 and ca-certificates (Debian's Python 3.11, the version
  requirements.lock was compiled for);
- ``localhost/realtimeorder-base/node:bookworm``: that plus this machine's Node.js (``dpkg -L
  nodejs``: Debian 12's own Node 18 is older than the web apps' engines field allows);
- ``localhost/realtimeorder-base/nginx:bookworm``: minbase with Debian's nginx-light, laid out like
  nginxinc/nginx-unprivileged (uid 101, port 8080, pid and temp files under /tmp).

Each rootfs is a tarball under the cache, keyed by its package list, so debootstrap runs once per
machine (about 9 minutes on 2 cores, mostly downloads; ``--cache-dir`` keeps the .debs for the
next base). buildah gets a private ``--root``/``--runroot`` under the cache and ``--layers``, so a
code change rebuilds only the last steps, and nothing under /var/lib/containers is touched.

**Smoke check** (buildah: the container runs in a network namespace of its own, so it takes no
host port): the services image serves ``/healthz`` as ``realtimeorder serve gateway`` and has no
Kubernetes client; the operator image imports its handlers; the web image serves ``/healthz``;
every process of every container runs as its image's non-root user (10001, or 101 for nginx).

Cache: ``$RTO_IMAGES_CACHE`` or ``~/.cache/realtimeorder/images``. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("RTO_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APP_UID = 10001
NGINX_UID = 101
WEB_APPS = ("user-app", "admin-dashboard")
SMOKE_TIMEOUT = 60.0


def cache_dir() -> Path:
    explicit = os.environ.get("RTO_IMAGES_CACHE")
    if explicit:
        return Path(explicit)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "realtimeorder" / "images"


def log(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


class ImageError(RuntimeError):
    """A build or a smoke check failed; the message says what and where the log is."""


def run(args: Sequence[str], *, capture: bool = False, **kwargs: object) -> str:
    """Run a command; fail with its output on a non-zero exit."""
    result = subprocess.run(
        list(args),
        check=False,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        **kwargs,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        detail = (result.stderr or "")[-3000:] if capture else ""
        raise ImageError(f"{' '.join(args)} failed with exit {result.returncode}\n{detail}")
    return str(result.stdout or "")


# ---- images -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    key: str  # services, operator, user-app, admin-dashboard
    name: str  # repository without tag
    dockerfile: Path
    context: Path
    build_args: tuple[tuple[str, str], ...] = ()

    def ref(self, tag: str) -> str:
        return f"{self.name}:{tag}"


SERVICES = Image("services", "localhost/realtimeorder", ROOT / "services/Dockerfile", ROOT)
OPERATOR = Image("operator", "localhost/realtimeorder-operator", ROOT / "operator/Dockerfile", ROOT)


def web_images() -> list[Image]:
    return [
        Image(
            app,
            f"localhost/realtimeorder-{app}",
            ROOT / "frontend/Dockerfile",
            ROOT / "frontend",
            (("APP", app),),
        )
        for app in WEB_APPS
    ]


def web_unbuildable_reason() -> str | None:
    """Why the web images cannot be built yet, or None when every app has what its build needs."""
    frontend = ROOT / "frontend"
    needed = ["Dockerfile", "package.json", "package-lock.json"]
    needed += [f"{app}/{f}" for app in WEB_APPS for f in ("package.json", "index.html")]
    missing = [n for n in needed if not (frontend / n).is_file()]
    if missing:
        return "frontend/ has no buildable app yet (missing: " + ", ".join(missing) + ")"
    return None


def select(only: str | None) -> list[Image]:
    wanted = {k.strip() for k in only.split(",")} if only else {"services", "operator", "web"}
    unknown = wanted - {"services", "operator", "web", *WEB_APPS}
    if unknown:
        raise ImageError(f"unknown image(s) {sorted(unknown)}: services, operator, web")
    images = [i for i in (SERVICES, OPERATOR) if i.key in wanted]
    web = [i for i in web_images() if "web" in wanted or i.key in wanted]
    if web:
        reason = web_unbuildable_reason()
        if reason:
            log(f"SKIPPING the web images: {reason}")
        else:
            images += web
    return images


# ---- engines ----------------------------------------------------------------------------------


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return result.returncode == 0


class Engine:
    name = ""

    def build(self, image: Image, tag: str) -> None:
        raise NotImplementedError

    def size(self, ref: str) -> str:
        raise NotImplementedError

    def user(self, ref: str) -> str:
        raise NotImplementedError

    def export(self, ref: str, path: Path) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def running(self, ref: str, args: Sequence[str], env: dict[str, str]) -> Iterator[Container]:
        raise NotImplementedError
        yield

    def run_once(self, ref: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise NotImplementedError


@dataclass
class Container:
    """A running container: ``get(path, port)`` fetches a URL from inside its network, ``uids()``
    lists the uids its processes run as."""

    engine: Engine
    handle: str
    netns_pid: int | None = None
    process: subprocess.Popen[bytes] | None = None

    def exited(self) -> bool:
        if self.process is not None:
            return self.process.poll() is not None
        state = run(["docker", "inspect", "-f", "{{.State.Running}}", self.handle], capture=True)
        return state.strip() != "true"

    def get(self, path: str, port: int) -> tuple[int, str]:
        if self.netns_pid is not None:  # buildah: the container's own network namespace
            code = (
                "import sys,urllib.request,urllib.error\n"
                "try:\n"
                f" r=urllib.request.urlopen('http://127.0.0.1:{port}{path}',timeout=3)\n"
                " print(r.status);print(r.read().decode()[:200])\n"
                "except urllib.error.HTTPError as e: print(e.code)\n"
            )
            result = subprocess.run(
                ["nsenter", f"--net=/proc/{self.netns_pid}/ns/net", sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "NO_PROXY": "*"},
            )
            if result.returncode != 0 or not result.stdout:
                raise OSError(result.stderr.strip().splitlines()[-1:] or "no answer")
            status, _, body = result.stdout.partition("\n")
            return int(status), body
        ip = run(
            ["docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", self.handle],
            capture=True,
        ).strip()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://{ip}:{port}{path}", timeout=3) as response:
                return response.status, response.read().decode()[:200]
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def uids(self) -> list[int]:
        if self.netns_pid is None:
            out = run(["docker", "top", self.handle, "-eo", "uid"], capture=True)
            return [int(line) for line in out.split()[1:] if line.isdigit()]
        netns = os.readlink(f"/proc/{self.netns_pid}/ns/net")
        host_root = os.stat("/")
        uids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.readlink(proc / "ns" / "net") != netns:
                    continue
                root = os.stat(proc / "root")
                if (root.st_dev, root.st_ino) == (host_root.st_dev, host_root.st_ino):
                    continue  # unshare, buildah, runc: ours, not the container's
                status = (proc / "status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("Uid:"):
                    uids.append(int(line.split()[1]))
        return uids


class Docker(Engine):
    name = "docker"

    def build(self, image: Image, tag: str) -> None:
        args = ["docker", "build", "-f", str(image.dockerfile), "-t", image.ref(tag)]
        for k, v in image.build_args:
            args += ["--build-arg", f"{k}={v}"]
        run([*args, "--build-arg", f"VERSION={tag}", str(image.context)])

    def size(self, ref: str) -> str:
        out = run(["docker", "image", "inspect", "-f", "{{.Size}}", ref], capture=True)
        return f"{int(out) / 1_000_000:.0f} MB"

    def user(self, ref: str) -> str:
        return run(["docker", "image", "inspect", "-f", "{{.Config.User}}", ref], capture=True)

    def export(self, ref: str, path: Path) -> None:
        run(["docker", "save", "-o", str(path), ref])

    @contextlib.contextmanager
    def running(self, ref: str, args: Sequence[str], env: dict[str, str]) -> Iterator[Container]:
        # As in the cluster: a read-only root filesystem with a writable /tmp.
        cmd = ["docker", "run", "-d", "--rm", "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
        for k, v in env.items():
            cmd += ["-e", f"{k}={v}"]
        handle = run([*cmd, ref, *args], capture=True).strip()
        try:
            yield Container(self, handle)
        finally:
            subprocess.run(["docker", "rm", "-f", handle], capture_output=True, check=False)

    def run_once(self, ref: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", args[0], ref, *args[1:]],
            capture_output=True,
            text=True,
            check=False,
        )


class Buildah(Engine):
    """buildah with storage of its own under the cache; every call goes through ``_cmd``."""

    name = "buildah"

    def __init__(self) -> None:
        if shutil.which("buildah") is None:
            raise ImageError(
                "no Docker daemon and no buildah: apt-get install buildah debootstrap runc "
                "(or start Docker)"
            )
        self.cache = cache_dir()
        self.root = self.cache / "buildah" / "root"
        self.runroot = self.cache / "buildah" / "runroot"
        self.root.mkdir(parents=True, exist_ok=True)
        self.runroot.mkdir(parents=True, exist_ok=True)

    def _cmd(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "overlay",
            *args,
        ]

    def env(self) -> dict[str, str]:
        # The blob-info cache and the short-name alias cache default to global paths; keep
        # them under the cache too.
        env = dict(os.environ)
        env["TMPDIR"] = str(self.cache / "tmp")
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.registries_conf())
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
        return env

    def registries_conf(self) -> Path:
        path = self.cache / "registries.conf"
        if not path.exists():
            path.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
        return path

    def buildah(self, *args: str, capture: bool = False) -> str:
        return run(self._cmd(*args), capture=capture, env=self.env())

    def has_image(self, ref: str, label: str | None = None) -> bool:
        result = subprocess.run(
            self._cmd("inspect", "--type", "image", ref),
            capture_output=True,
            text=True,
            check=False,
            env=self.env(),
        )
        if result.returncode != 0:
            return False
        if label is None:
            return True
        labels = json.loads(result.stdout).get("OCIv1", {}).get("config", {}).get("Labels") or {}
        return bool(labels.get("io.realtimeorder.base.key") == label)

    def build(self, image: Image, tag: str) -> None:
        bases = Bases(self)
        args = [
            "bud",
            "--layers",
            "--force-rm",
            "--pull=never",
            "--network",
            "host",
            "--isolation",
            "chroot",
            "-f",
            str(image.dockerfile),
            "-t",
            image.ref(tag),
            "--build-arg",
            f"VERSION={tag}",
        ]
        if CA_BUNDLE.is_file():  # RUN steps reach PyPI and npm through this machine's CA bundle
            args += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
        if image.key in ("services", "operator"):
            args += ["--build-arg", f"PYTHON_IMAGE={bases.python()}"]
        else:
            args += ["--build-arg", f"NODE_IMAGE={bases.node()}"]
            args += ["--build-arg", f"NGINX_IMAGE={bases.nginx()}"]
        for k, v in image.build_args:
            args += ["--build-arg", f"{k}={v}"]
        self.buildah(*args, str(image.context))

    def size(self, ref: str) -> str:
        out = self.buildah("images", "--json", ref, capture=True)
        return str(json.loads(out)[0]["size"])

    def user(self, ref: str) -> str:
        out = self.buildah("inspect", "--type", "image", ref, capture=True)
        return str(json.loads(out)["OCIv1"]["config"].get("User", ""))

    def export(self, ref: str, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.buildah("push", "--quiet", ref, f"oci-archive:{path}:{ref}")

    @contextlib.contextmanager
    def running(self, ref: str, args: Sequence[str], env: dict[str, str]) -> Iterator[Container]:
        name = f"rto-smoke-{secrets.token_hex(4)}"
        self.buildah("from", "--pull=never", "--name", name, ref, capture=True)
        # buildah run takes the whole command line: the image's entrypoint is not applied.
        config = json.loads(self.buildah("inspect", "--type", "image", ref, capture=True))
        config = config["OCIv1"]["config"]
        argv = [*(config.get("Entrypoint") or []), *(args or config.get("Cmd") or [])]
        cmd = ["run", "--network", "host", "--isolation", "oci"]
        for k, v in env.items():
            cmd += ["--env", f"{k}={v}"]
        # unshare --net: the "host" network buildah sees is a fresh namespace with only loopback.
        logf = tempfile.NamedTemporaryFile(prefix="smoke-", suffix=".log", delete=False)  # noqa: SIM115
        process = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--",
                "sh",
                "-c",
                'ip link set lo up && exec "$@"',
                "sh",
                *self._cmd(*cmd, name, "--", *argv),
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=self.env(),
            start_new_session=True,
        )
        try:
            yield Container(self, name, netns_pid=process.pid, process=process)
        except BaseException:
            logf.flush()
            log(f"container output:\n{Path(logf.name).read_text(errors='replace')[-3000:]}")
            raise
        finally:
            self._stop_container(process)
            subprocess.run(self._cmd("rm", name), capture_output=True, check=False, env=self.env())
            logf.close()
            os.unlink(logf.name)

    def _stop_container(self, process: subprocess.Popen[bytes]) -> None:
        """Stop the container's processes (they share the unshare'd network namespace), then
        buildah run, which exits once they are gone."""
        if process.poll() is None:
            netns = os.readlink(f"/proc/{process.pid}/ns/net")
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in pids_in_netns(netns, exclude_host_root=True):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                try:
                    process.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def run_once(self, ref: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        name = f"rto-smoke-{secrets.token_hex(4)}"
        self.buildah("from", "--pull=never", "--name", name, ref, capture=True)
        try:
            return subprocess.run(
                self._cmd("run", "--isolation", "oci", name, "--", *args),
                capture_output=True,
                text=True,
                check=False,
                env=self.env(),
            )
        finally:
            subprocess.run(self._cmd("rm", name), capture_output=True, check=False, env=self.env())


# containers/image and buildah's network setup create these for root whatever --root says
# (the blob-info cache, the network run directory); the ones they create, we remove again.
BUILDAH_HOST_PATHS = (Path("/var/lib/containers"), Path("/run/containers"))


@contextlib.contextmanager
def host_paths_restored(paths: Sequence[Path] = BUILDAH_HOST_PATHS) -> Iterator[None]:
    # A build killed before its cleanup leaves a note, so the next run still knows they are ours.
    note = cache_dir() / "created-host-paths"
    noted = set(note.read_text().split()) if note.is_file() else set()
    ours = [p for p in paths if not p.exists() or str(p) in noted]
    if ours:
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text("".join(f"{p}\n" for p in ours))
    try:
        yield
    finally:
        for path in ours:
            shutil.rmtree(path, ignore_errors=True)
        note.unlink(missing_ok=True)


def pids_in_netns(netns: str, exclude_host_root: bool) -> list[int]:
    host_root = os.stat("/")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "ns" / "net") != netns:
                continue
            root = os.stat(proc / "root")
        except OSError:
            continue
        if exclude_host_root and (root.st_dev, root.st_ino) == (host_root.st_dev, host_root.st_ino):
            continue
        pids.append(int(proc.name))
    return pids


# ---- base images for buildah ------------------------------------------------------------------

PYTHON_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
NGINX_PACKAGES = ("nginx-light",)
# Documentation, translations and package indexes: nothing at run time reads them.
PRUNE = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
)
NGINX_CONF = """\
# Laid out like nginxinc/nginx-unprivileged: any uid, port 8080, every writable path under /tmp.
worker_processes auto;
error_log /dev/stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 1024; }
http {
    proxy_temp_path /tmp/proxy_temp;
    client_body_temp_path /tmp/client_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""


class Bases:
    """The base images buildah builds FROM, made from Debian packages (see the module docstring)."""

    def __init__(self, engine: Buildah) -> None:
        self.engine = engine
        self.rootfs_dir = engine.cache / "rootfs"
        self.debs = engine.cache / "debs"

    def _key(self, *parts: str) -> str:
        text = "\n".join((DEBIAN_SUITE, DEBIAN_MIRROR, *parts))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def rootfs(self, name: str, packages: Sequence[str]) -> Path:
        """A tarball of ``debootstrap --variant=minbase`` plus packages, made once."""
        key = self._key(name, *packages)
        tarball = self.rootfs_dir / f"{name}-{key}.tar"
        if tarball.is_file():
            return tarball
        if shutil.which("debootstrap") is None:
            raise ImageError("the base images need debootstrap: apt-get install debootstrap")
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        self.debs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.rootfs_dir))
        target = work / "rootfs"
        logfile = self.rootfs_dir / f"{name}-{key}.log"
        start = time.monotonic()
        log(f"debootstrap {DEBIAN_SUITE} for the {name} base (once; log: {logfile})")
        try:
            with logfile.open("w") as out:
                result = subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(packages)}",
                        f"--cache-dir={self.debs}",
                        DEBIAN_SUITE,
                        str(target),
                        DEBIAN_MIRROR,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if result.returncode != 0:
                raise ImageError(f"debootstrap failed (exit {result.returncode}); log: {logfile}")
            for rel in PRUNE:
                path = target / rel
                if path.is_dir():
                    shutil.rmtree(path)
                    path.mkdir()
            run(["tar", "-C", str(target), "--numeric-owner", "-cf", f"{tarball}.part", "."])
            os.replace(f"{tarball}.part", tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log(f"{name} rootfs ready in {time.monotonic() - start:.0f}s: {tarball}")
        return tarball

    def _import(
        self,
        ref: str,
        tarball: Path,
        key: str,
        config: Sequence[str],
        extra: Sequence[tuple[Path, str]] = (),
        script: str | None = None,
    ) -> str:
        if self.engine.has_image(ref, label=key):
            return ref
        log(f"importing {ref}")
        b = self.engine
        ctr = b.buildah("from", "scratch", capture=True).strip()
        try:
            mnt = Path(b.buildah("mount", ctr, capture=True).strip())
            run(["tar", "-C", str(mnt), "--numeric-owner", "-xpf", str(tarball)])
            for src, dest in extra:
                copy_into(src, mnt / dest.lstrip("/"))
            if script:
                run(["chroot", str(mnt), "/bin/sh", "-ec", script])
            b.buildah("umount", ctr)
            b.buildah(
                "config",
                "--env",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--label",
                f"io.realtimeorder.base.key={key}",
                *config,
                ctr,
            )
            b.buildah("commit", "--quiet", "--rm", ctr, ref, capture=True)
        except BaseException:
            subprocess.run(b._cmd("rm", ctr), capture_output=True, check=False, env=b.env())
            raise
        return ref

    def python(self) -> str:
        tarball = self.rootfs("python", PYTHON_PACKAGES)
        ref = "localhost/realtimeorder-base/python:3.11-bookworm"
        return self._import(ref, tarball, tarball.stem, ["--cmd", "python3"])

    def node(self) -> str:
        """The python base plus this machine's Node.js package files (``dpkg -L nodejs``)."""
        if shutil.which("dpkg") is None or shutil.which("node") is None:
            raise ImageError("the web images' build stage needs Node.js installed here (nodejs)")
        files = run(["dpkg", "-L", "nodejs"], capture=True).split()
        version = run(["node", "--version"], capture=True).strip()
        tarball = self.rootfs("python", PYTHON_PACKAGES)
        key = f"{tarball.stem}-node-{version}"
        ref = "localhost/realtimeorder-base/node:bookworm"
        # npm updates itself in place: take its folder as it is, not as the package listed it.
        npm = Path("/usr/lib/node_modules/npm")
        paths = [
            Path(f)
            for f in files
            if (Path(f).is_file() or Path(f).is_symlink()) and npm not in Path(f).parents
        ]
        paths += [f for f in npm.rglob("*") if f.is_file() or f.is_symlink()]
        npm_version = json.loads((npm / "package.json").read_text())["version"]
        key += f"-npm-{npm_version}"
        # Node trusts only its own CA list; npm reaches the registry through this machine's.
        ca_env = f"NODE_EXTRA_CA_CERTS={CA_BUNDLE}"
        config = ["--cmd", "node", "--env", ca_env]
        return self._import(ref, tarball, f"{key}-ca", config, [(p, str(p)) for p in paths])

    def nginx(self) -> str:
        tarball = self.rootfs("nginx", NGINX_PACKAGES)
        ref = "localhost/realtimeorder-base/nginx:bookworm"
        script = (
            "groupadd --system --gid 101 nginx\n"
            "useradd --system --uid 101 --gid 101 --no-create-home --home-dir /nonexistent "
            "--shell /usr/sbin/nologin nginx\n"
            "rm -rf /etc/nginx/sites-enabled /etc/nginx/sites-available /var/www\n"
            "mkdir -p /usr/share/nginx/html /etc/nginx/conf.d\n"
            "chown -R 101:101 /var/log/nginx /var/lib/nginx\n"
            f"cat > /etc/nginx/nginx.conf <<'EOF'\n{NGINX_CONF}EOF\n"
        )
        return self._import(
            ref,
            tarball,
            f"{tarball.stem}-unprivileged",
            [
                "--user",
                "101:101",
                "--port",
                "8080",
                "--stop-signal",
                "SIGQUIT",
                "--cmd",
                '["nginx", "-g", "daemon off;"]',
            ],
            script=script,
        )


def copy_into(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        dest.unlink(missing_ok=True)
        dest.symlink_to(os.readlink(src))
    else:
        shutil.copy2(src, dest)


# ---- commands ---------------------------------------------------------------------------------


def engine() -> Engine:
    forced = os.environ.get("RTO_IMAGE_ENGINE", "")
    if forced == "docker" or (not forced and docker_available()):
        return Docker()
    if forced not in ("", "buildah"):
        raise ImageError(f"RTO_IMAGE_ENGINE={forced}: docker or buildah")
    return Buildah()


def build(images: list[Image], tag: str) -> None:
    eng = engine()
    log(f"building with {eng.name}: {', '.join(i.ref(tag) for i in images)}")
    for image in images:
        start = time.monotonic()
        eng.build(image, tag)
        log(
            f"built {image.ref(tag)} in {time.monotonic() - start:.0f}s, {eng.size(image.ref(tag))}"
        )


def wait_healthz(container: Container, port: int) -> str:
    deadline = time.monotonic() + SMOKE_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if container.exited():
            raise ImageError("the container exited before /healthz answered")
        try:
            status, body = container.get("/healthz", port)
            if status == 200:
                return body
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise ImageError(f"/healthz on port {port} did not answer 200 in {SMOKE_TIMEOUT:.0f}s: {last}")


def check_user(eng: Engine, container: Container, ref: str, uid: int) -> None:
    configured = eng.user(ref).strip()
    if configured.split(":")[0] != str(uid):
        raise ImageError(f"{ref}: image user is {configured!r}, expected {uid}")
    uids = container.uids()
    if not uids or any(u != uid for u in uids):
        raise ImageError(f"{ref}: container processes run as uids {uids}, expected only {uid}")


def public_key(eng: Engine, ref: str) -> str:
    """A fresh token verification key, made by the image (so its crypto library is there)."""
    code = "from services.kit.keys import generate_pem_pair; print(generate_pem_pair()[1])"
    result = eng.run_once(ref, ["python", "-c", code])
    if result.returncode != 0 or "BEGIN PUBLIC KEY" not in result.stdout:
        raise ImageError(
            f"{ref}: making a token key pair failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr[-2000:]}"
        )
    return result.stdout.strip()


def smoke(images: list[Image], tag: str) -> None:
    eng = engine()
    for image in images:
        ref = image.ref(tag)
        start = time.monotonic()
        if image.key == "services":
            env = {"PORT": "3000", "JWT_PUBLIC_KEY": public_key(eng, ref)}
            with eng.running(ref, ["serve", "gateway"], env) as container:
                wait_healthz(container, 3000)
                check_user(eng, container, ref, APP_UID)
            result = eng.run_once(ref, ["python", "-c", "import kubernetes"])
            if "No module named 'kubernetes'" not in result.stderr:
                raise ImageError(
                    f"{ref}: the Kubernetes client belongs to the operator's image only "
                    f"(import kubernetes: exit {result.returncode}, {result.stderr[-500:]!r})"
                )
        elif image.key == "operator":
            code = "import os, realtimeorder_operator.handlers; print(os.getuid())"
            result = eng.run_once(ref, ["python", "-c", code])
            if result.returncode != 0 or result.stdout.strip() != str(APP_UID):
                raise ImageError(
                    f"{ref}: importing the operator's handlers as the image user failed "
                    f"(exit {result.returncode}):\n{result.stdout}{result.stderr[-2000:]}"
                )
        else:
            with eng.running(ref, [], {}) as container:
                wait_healthz(container, 8080)
                check_user(eng, container, ref, NGINX_UID)
        log(f"smoke ok: {ref} ({time.monotonic() - start:.0f}s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build and smoke-check RealTimeOrder's images (see the module docstring)."
    )
    parser.add_argument("command", nargs="?", default="build", choices=["build", "smoke", "export"])
    parser.add_argument("args", nargs="*", help="export: IMAGE FILE")
    parser.add_argument("--only", help="comma-separated: services, operator, web (default: all)")
    parser.add_argument("--tag", default=os.environ.get("RTO_IMAGE_TAG", "dev"))
    opts = parser.parse_args(argv)
    if opts.command == "export" and len(opts.args) != 2:
        parser.error("export IMAGE FILE")
    try:
        with host_paths_restored():
            if opts.command == "export":
                engine().export(opts.args[0], Path(opts.args[1]).resolve())
            elif opts.command == "build":
                build(select(opts.only), opts.tag)
            else:
                smoke(select(opts.only), opts.tag)
    except ImageError as exc:
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
