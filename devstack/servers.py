"""How to run each backing server as a local foreground process bound to 127.0.0.1.

A `ServerSpec` is everything a process manager needs: the command, its environment and working
directory, the ports it binds, a one-time `prepare` step (initdb, formatting Kafka's storage,
writing config files) and a readiness probe that talks the server's own protocol. supervisord
runs these specs for `make up`; `process.ManagedProcess` runs them for the test fixtures.

`durable=False` trades crash safety for speed (no fsync, no persistence) and is what the tests use.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import HOST

Probe = Callable[[], None]
"""Returns when the server answers; raises (anything) while it does not."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    argv: tuple[str, ...]
    cwd: Path
    ports: Mapping[str, int]
    ready: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    prepare: Callable[[], None] | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    start_timeout: float = 60.0
    stop_timeout: float = 30.0


def unprivileged_user(name: str) -> str | None:
    """`name` when running as root (some servers refuse root), else None: run as ourselves."""
    return name if os.geteuid() == 0 else None


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass(frozen=True)
class Identity:
    """Who a child process runs as: Popen's user, group and extra_groups (None: as we are)."""

    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    home: str | None = None


def identity(user: str | None) -> Identity:
    if user is None:
        return Identity()
    entry = pwd.getpwnam(user)
    return Identity(entry.pw_uid, entry.pw_gid, [], entry.pw_dir)


def run_as(argv: list[str], user: str | None, cwd: Path) -> None:
    """Run a short command to completion as `user`, raising with its output when it fails."""
    who = identity(user)
    result = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
        user=who.user,
        group=who.group,
        extra_groups=who.extra_groups,
    )
    if result.returncode != 0:
        output = f"{result.stdout}{result.stderr}"
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{output}")


def _ensure_reachable(path: Path, user: str | None) -> None:
    """Fail early and clearly when `user` cannot reach `path` (e.g. a checkout under /root)."""
    if user is None:
        return
    try:
        run_as(["test", "-w", str(path)], user, Path("/"))
    except RuntimeError:
        raise RuntimeError(
            f"user {user} cannot write {path}: every parent folder must be searchable "
            f"by {user} (e.g. chmod o+x on them), or clone the repository elsewhere"
        ) from None


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (POSTGRES_BIN_DIR overrides)."""
    override = os.environ.get("POSTGRES_BIN_DIR")
    if override:
        return Path(override)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL is not installed (run scripts/install.sh)")


def postgres_conninfo(port: int, password: str, dbname: str = "postgres") -> str:
    return (
        f"host={HOST} port={port} user=postgres password={password} dbname={dbname} "
        "connect_timeout=3"
    )


def postgres(root: Path, port: int, password: str, *, durable: bool = True) -> ServerSpec:
    """PostgreSQL with superuser `postgres`/`password`, password auth over TCP only."""
    bin_dir = postgres_bin_dir()
    data = root / "data"
    user = unprivileged_user("postgres")

    def prepare() -> None:
        if (data / "PG_VERSION").exists():
            return
        if data.exists():  # a half-finished initdb: start over
            shutil.rmtree(data)
        data.mkdir(parents=True)
        _chown(root, user)
        _chown(data, user)
        _ensure_reachable(data, user)
        pwfile = root / "initdb.pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        _chown(pwfile, user)
        try:
            argv = [
                str(bin_dir / "initdb"),
                f"--pgdata={data}",
                "--username=postgres",
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
            if not durable:
                argv.append("--no-sync")
            run_as(argv, user, root)
        finally:
            pwfile.unlink()

    settings = {
        "listen_addresses": HOST,
        # No Unix socket: clients use TCP, and socket paths under a deep checkout can exceed
        # the 107-byte limit.
        "unix_socket_directories": "",
        "max_connections": "200",
        "shared_buffers": "128MB",
    }
    if not durable:
        settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]

    def ready() -> None:
        import psycopg

        psycopg.connect(postgres_conninfo(port, password)).close()

    return ServerSpec(
        name="postgres",
        argv=tuple(argv),
        cwd=root,
        ports={"postgres": port},
        ready=ready,
        env={"LC_ALL": "C.UTF-8"},
        user=user,
        prepare=prepare,
        # SIGINT is PostgreSQL's "fast" shutdown: it ends sessions instead of waiting for them.
        stop_signal=signal.SIGINT,
    )


# --- Redis ------------------------------------------------------------------------------------


def redis(root: Path, port: int, *, durable: bool = True) -> ServerSpec:
    """Redis; with `durable` an append-only file in `root`, otherwise memory only."""
    argv = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--bind", HOST,
        "--port", str(port),
        "--dir", str(root),
        "--daemonize", "no",
        "--save", "",
        "--appendonly", "yes" if durable else "no",
        "--loglevel", "notice",
    ]  # fmt: skip

    def prepare() -> None:
        root.mkdir(parents=True, exist_ok=True)

    def ready() -> None:
        import redis as redis_client

        with redis_client.Redis(host=HOST, port=port, socket_timeout=2) as client:
            client.ping()

    return ServerSpec(
        name="redis",
        argv=tuple(argv),
        cwd=root,
        ports={"redis": port},
        ready=ready,
        prepare=prepare,
    )
