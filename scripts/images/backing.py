"""Images of the backing servers, built here from Debian packages (and Kafka's Maven jars).

    scripts/images/backing.py [build] [--only postgresql,redis,...]       (make images-backing)
    scripts/images/backing.py smoke [--only ...]                      (make images-backing-smoke)

=================================================  ===============================================
``localhost/realtimeorder-backing/postgresql:15``  Debian's postgresql-15; uid 70 like the alpine
                                                   image the chart defaults to; POSTGRES_USER,
                                                   POSTGRES_PASSWORD, POSTGRES_DB, PGDATA honoured
                                                   (k8s/images/postgresql/entrypoint.sh)
``localhost/realtimeorder-backing/redis:7.0``      Debian's redis-server; uid 999, gid 1000 as the
                                                   chart's podSecurityContext expects
``localhost/realtimeorder-backing/rabbitmq:3.10``  Debian's rabbitmq-server with the management
                                                   plugin; uid 999; RABBITMQ_DEFAULT_USER/PASS
``localhost/realtimeorder-backing/kafka:VERSION``  Debian's JRE 17 and the broker jars scripts/
                                                   install.sh resolves from Maven Central
                                                   (scripts/kafka/pom.xml); KAFKA_* variables as
                                                   in the apache/kafka image; uid 1000
=================================================  ===============================================

Each is the ``debootstrap --variant=minbase`` rootfs of its packages (cached like the other bases
of build.py), with its entrypoint from ``k8s/images/<name>/`` and a non-root user, so it runs
under Pod Security ``restricted``. The chart's bundled PostgreSQL and Redis take the first two by
``postgresql.image`` and ``redis.image``; RabbitMQ and Kafka run from the manifests in
``k8s/dev-backing/`` with their images replaced (the chart bundles those two only through the
RabbitMQ and Strimzi operators, whose images cannot be built here).

buildah only: with Docker, the official images the chart names are pulled instead.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ENTRYPOINTS = ROOT / "k8s" / "images"
PREFIX = "localhost/realtimeorder-backing"
SMOKE_TIMEOUT = 120.0


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rto_images_build", HERE / "build.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load scripts/images/build.py")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


images = _load_build()


def _devstack_servers() -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import devstack.servers

    return devstack.servers


@dataclass(frozen=True)
class Backing:
    key: str
    tag: str
    packages: tuple[str, ...]
    uid: int
    gid: int
    script: str
    config: tuple[str, ...]
    port: int
    extra: Callable[[], list[tuple[Path, str]]] = field(default=lambda: [])

    @property
    def ref(self) -> str:
        return f"{PREFIX}/{self.key}:{self.tag}"


def _entrypoint(name: str) -> tuple[Path, str]:
    return ENTRYPOINTS / name / "entrypoint.sh", "/usr/local/bin/entrypoint.sh"


def _user(name: str, uid: int, gid: int, home: str) -> str:
    """Give the package's system user (or a new one) the uid/gid the chart's pods run as."""
    return (
        f"if getent group {name} >/dev/null; then groupmod -g {gid} {name};"
        f" else groupadd --system -g {gid} {name}; fi\n"
        f"if getent passwd {name} >/dev/null; then usermod -u {uid} -g {gid} -d {home} {name};"
        f" else useradd --system -u {uid} -g {gid} -d {home} -s /usr/sbin/nologin {name}; fi\n"
    )


POSTGRESQL = Backing(
    key="postgresql",
    tag="15",
    packages=("postgresql-15",),
    uid=70,
    gid=70,
    script=(
        _user("postgres", 70, 70, "/var/lib/postgresql")
        # The package's own cluster and config: the entrypoint makes PGDATA itself.
        + "rm -rf /var/lib/postgresql/15 /etc/postgresql/15\n"
        "mkdir -p /var/lib/postgresql/data /var/run/postgresql\n"
        "chown -R 70:70 /var/lib/postgresql /var/run/postgresql\n"
    ),
    config=(
        "--env",
        "PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--env",
        "PGDATA=/var/lib/postgresql/data",
        "--entrypoint",
        '["/usr/local/bin/entrypoint.sh"]',
        "--stop-signal",
        "SIGINT",
    ),
    port=5432,
    extra=lambda: [_entrypoint("postgresql")],
)

REDIS = Backing(
    key="redis",
    tag="7.0",
    packages=("redis-server",),
    uid=999,
    gid=1000,
    script=(
        _user("redis", 999, 1000, "/data") + "rm -rf /etc/redis /var/lib/redis /var/log/redis\n"
        "mkdir -p /data && chown 999:1000 /data\n"
    ),
    config=("--workingdir", "/data", "--cmd", '["redis-server"]'),
    port=6379,
)

RABBITMQ = Backing(
    key="rabbitmq",
    tag="3.10",
    packages=("rabbitmq-server",),
    uid=999,
    gid=999,
    script=(
        _user("rabbitmq", 999, 999, "/var/lib/rabbitmq")
        + "echo '[rabbitmq_management].' > /etc/rabbitmq/enabled_plugins\n"
        "rm -rf /var/lib/rabbitmq/* /var/log/rabbitmq/*\n"
        "chown -R 999:999 /var/lib/rabbitmq /var/log/rabbitmq\n"
    ),
    config=(
        # The real scripts, not Debian's wrappers (which redirect the server's output to files).
        "--env",
        "PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--env",
        "HOME=/var/lib/rabbitmq",
        # The server and the CLI (probes, rabbitmqctl) agree on a name that needs no DNS.
        "--env",
        "RABBITMQ_NODENAME=rabbit@localhost",
        "--workingdir",
        "/var/lib/rabbitmq",
        "--entrypoint",
        '["/usr/local/bin/entrypoint.sh"]',
    ),
    port=15672,
    extra=lambda: [_entrypoint("rabbitmq")],
)


def _kafka_files() -> list[tuple[Path, str]]:
    servers = _devstack_servers()
    libs = Path(servers.kafka_libs_dir())
    jars = sorted(libs.glob("*.jar"))
    if not any(j.name.startswith("kafka_2.13-") for j in jars):
        raise images.ImageError(f"Kafka's jars are missing from {libs}: run scripts/install.sh")
    log4j = images.cache_dir() / "kafka-log4j2.properties"
    log4j.parent.mkdir(parents=True, exist_ok=True)
    log4j.write_text(servers.KAFKA_LOG4J2)
    files = [(jar, f"/opt/kafka/libs/{jar.name}") for jar in jars]
    return [*files, (log4j, "/opt/kafka/config/log4j2.properties"), _entrypoint("kafka")]


def kafka() -> Backing:
    return Backing(
        key="kafka",
        tag=_devstack_servers().kafka_version(),
        packages=("openjdk-17-jre-headless",),
        uid=1000,
        gid=1000,
        script=(
            _user("kafka", 1000, 1000, "/var/lib/kafka")
            + "mkdir -p /var/lib/kafka/data && chown -R 1000:1000 /var/lib/kafka\n"
        ),
        config=(
            "--env",
            "KAFKA_LOG_DIRS=/var/lib/kafka/data",
            "--workingdir",
            "/opt/kafka",
            "--entrypoint",
            '["/usr/local/bin/entrypoint.sh"]',
        ),
        port=9092,
        extra=_kafka_files,
    )


def catalogue() -> dict[str, Backing]:
    return {b.key: b for b in (POSTGRESQL, REDIS, RABBITMQ, kafka())}


def select(only: str | None) -> list[Backing]:
    known = catalogue()
    wanted = [k.strip() for k in only.split(",")] if only else list(known)
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise images.ImageError(f"unknown backing image(s) {unknown}: {', '.join(known)}")
    return [known[k] for k in wanted]


def build_one(engine: object, backing: Backing) -> None:
    bases = images.Bases(engine)
    tarball = bases.rootfs(backing.key, backing.packages)
    extra = backing.extra()
    digest = hashlib.sha256()
    digest.update(backing.script.encode())
    digest.update("\0".join(backing.config).encode())
    for src, dest in extra:
        digest.update(dest.encode())
        digest.update(src.read_bytes())
    key = f"{tarball.stem}-{digest.hexdigest()[:12]}"
    user = f"{backing.uid}:{backing.gid}"
    bases._import(
        backing.ref, tarball, key, [*backing.config, "--user", user], extra, backing.script
    )


def build(selected: Sequence[Backing]) -> None:
    engine = images.engine()
    if engine.name != "buildah":
        raise images.ImageError("the backing images are built with buildah (RTO_IMAGE_ENGINE)")
    for backing in selected:
        start = time.monotonic()
        build_one(engine, backing)
        images.log(f"built {backing.ref} in {time.monotonic() - start:.0f}s, "
                   f"{engine.size(backing.ref)}")  # fmt: skip


# ---- smoke: each server answers, as its non-root user ------------------------------------------

SMOKE_ENV: dict[str, dict[str, str]] = {
    "postgresql": {
        "POSTGRES_USER": "smoke",
        "POSTGRES_PASSWORD": "smoke-password",
        "POSTGRES_DB": "smokedb",
    },
    "redis": {},
    "rabbitmq": {
        "RABBITMQ_DEFAULT_USER": "smoke",
        "RABBITMQ_DEFAULT_PASS": "smoke-password",
    },
    "kafka": {
        "CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://localhost:9092",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    },
}

# A command run in the container's network namespace that succeeds once the server serves.
PROBES: dict[str, list[str]] = {
    "postgresql": ["pg_isready", "-h", "127.0.0.1", "-U", "smoke", "-d", "smokedb"],
    "redis": ["redis-cli", "-h", "127.0.0.1", "ping"],
    "rabbitmq": [
        sys.executable,
        "-c",
        "import base64,urllib.request as u;r=u.Request('http://127.0.0.1:15672/api/overview');"
        "r.add_header('Authorization','Basic '+base64.b64encode(b'smoke:smoke-password').decode());"
        "u.urlopen(r,timeout=3).read()",
    ],
    "kafka": [
        sys.executable,
        "-c",
        "from confluent_kafka.admin import AdminClient as A;"
        "m=A({'bootstrap.servers':'127.0.0.1:9092'}).list_topics(timeout=3);assert m.brokers",
    ],
}


def smoke(selected: Sequence[Backing]) -> None:
    engine = images.engine()
    for backing in selected:
        start = time.monotonic()
        with engine.running(backing.ref, [], SMOKE_ENV[backing.key]) as container:
            deadline = time.monotonic() + SMOKE_TIMEOUT
            while True:
                if container.exited():
                    raise images.ImageError(f"{backing.ref} exited before it served")
                probe = subprocess.run(
                    ["nsenter", f"--net=/proc/{container.netns_pid}/ns/net", *PROBES[backing.key]],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if probe.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise images.ImageError(
                        f"{backing.ref} did not serve in {SMOKE_TIMEOUT:.0f}s: "
                        f"{probe.stderr[-500:]}"
                    )
                time.sleep(1)
            images.check_user(engine, container, backing.ref, backing.uid)
        images.log(f"smoke ok: {backing.ref} ({time.monotonic() - start:.0f}s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "smoke", "refs"])
    parser.add_argument("--only", help="comma-separated: postgresql, redis, rabbitmq, kafka")
    opts = parser.parse_args(argv)
    try:
        selected = select(opts.only)
        if opts.command == "refs":
            print("\n".join(b.ref for b in selected))
            return 0
        with images.host_paths_restored():
            if opts.command == "build":
                build(selected)
            else:
                smoke(selected)
    except images.ImageError as exc:
        images.log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
