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
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ports import HOST, is_listening

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


def can_reach(path: Path, user: str | None) -> bool:
    """Whether `user` can search `path` and every folder above it."""
    if user is None:
        return True
    try:
        run_as(["test", "-x", str(path)], user, Path("/"))
    except RuntimeError:
        return False
    return True


def _ensure_reachable(path: Path, user: str | None) -> None:
    """Fail early and clearly when `user` cannot reach `path` (e.g. a checkout under /root)."""
    if not can_reach(path, user):
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
        # Commit times of transactions, for the benchmark's per-stage breakdown of an order
        # (bench/stages.py); a few bytes per transaction.
        "track_commit_timestamp": "on",
        # Execution time and calls per statement, for the benchmark's statements per order
        # (bench/statements.py).
        "shared_preload_libraries": "pg_stat_statements",
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


# --- RabbitMQ ---------------------------------------------------------------------------------

RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")


def epmd(port: int) -> ServerSpec:
    """A private Erlang port mapper for our RabbitMQ node, so it never shares the system one."""

    def ready() -> None:
        run_as(["epmd", "-port", str(port), "-names"], None, Path("/"))

    return ServerSpec(
        name="epmd",
        argv=(shutil.which("epmd") or "/usr/bin/epmd", "-port", str(port), "-address", HOST),
        cwd=Path("/"),
        ports={"epmd": port},
        ready=ready,
        start_timeout=15.0,
    )


@dataclass(frozen=True)
class RabbitPorts:
    amqp: int
    management: int
    dist: int
    epmd: int


def rabbitmq_conf(ports: RabbitPorts, user: str, password: str) -> str:
    """The new-style rabbitmq.conf: listeners on 127.0.0.1, an administrator, logs to stdout."""
    return "\n".join(
        [
            f"listeners.tcp.default = {HOST}:{ports.amqp}",
            f"management.tcp.ip = {HOST}",
            f"management.tcp.port = {ports.management}",
            f"default_user = {user}",
            f"default_pass = {password}",
            "default_user_tags.administrator = true",
            "default_permissions.configure = .*",
            "default_permissions.read = .*",
            "default_permissions.write = .*",
            "disk_free_limit.absolute = 50MB",
            "log.console = true",
            "log.console.level = info",
            "log.file = false",
            "",
        ]
    )


def rabbitmq(root: Path, ports: RabbitPorts, user: str, password: str) -> ServerSpec:
    """RabbitMQ with its management plugin; needs `epmd(ports.epmd)` running first."""
    config = root / "rabbitmq.conf"
    plugins = root / "enabled_plugins"
    env = {
        # Unique per AMQP port, so several nodes (tests beside `make up`) never collide.
        "RABBITMQ_NODENAME": f"rabbit-{ports.amqp}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(ports.amqp),
        "RABBITMQ_DIST_PORT": str(ports.dist),
        "ERL_EPMD_PORT": str(ports.epmd),
        "ERL_EPMD_ADDRESS": HOST,
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_PID_FILE": str(root / "rabbitmq.pid"),
        "RABBITMQ_LOGS": "-",
        # The Erlang cookie lives in $HOME: keep ours private to this node.
        "HOME": str(root),
        # Never spawn a detached epmd (ours runs first), and do not busy-wait on idle
        # schedulers: the machine is shared with every other server and service.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
            "-start_epmd false +sbwt none +sbwtdcpu none +sbwtdio none"
        ),
    }

    def prepare() -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "log").mkdir(exist_ok=True)
        config.write_text(rabbitmq_conf(ports, user, password))
        plugins.write_text("[rabbitmq_management].\n")
        (root / "rabbitmq-env.conf").write_text("")
        (root / "advanced.config").write_text("[].\n")

    def ready() -> None:
        rabbitmq_ready(ports, user, password)

    return ServerSpec(
        name="rabbitmq",
        argv=(str(RABBITMQ_SCRIPTS / "rabbitmq-server"),),
        cwd=root,
        ports={"amqp": ports.amqp, "management": ports.management, "dist": ports.dist},
        ready=ready,
        env=env,
        prepare=prepare,
        start_timeout=90.0,
        stop_timeout=60.0,
    )


def rabbitmq_ready(ports: RabbitPorts, user: str, password: str) -> None:
    """An AMQP connection opens and the management API answers an authenticated request."""
    import base64
    import urllib.request

    import pika

    credentials = pika.PlainCredentials(user, password)
    parameters = pika.ConnectionParameters(
        HOST, ports.amqp, credentials=credentials, socket_timeout=2, connection_attempts=1
    )
    pika.BlockingConnection(parameters).close()
    request = urllib.request.Request(f"http://{HOST}:{ports.management}/api/overview")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our own URL
        response.read()


# --- Kafka ------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_POM = REPO_ROOT / "scripts" / "kafka" / "pom.xml"


def kafka_version(pom: Path = KAFKA_POM) -> str:
    """The broker version pinned in scripts/kafka/pom.xml."""
    import xml.etree.ElementTree as ET

    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(pom).findtext("m:properties/m:kafka.version", namespaces=namespace)  # noqa: S314 - our own file
    if not version:
        raise RuntimeError(f"{pom} does not pin kafka.version")
    return version


def kafka_libs_dir() -> Path:
    """Where scripts/install.sh puts the broker's jars (KAFKA_LIBS_DIR overrides)."""
    override = os.environ.get("KAFKA_LIBS_DIR")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "realtimeorder" / "kafka" / kafka_version() / "libs"


def kafka_properties(port: int, controller_port: int, log_dir: Path) -> str:
    """A single node in KRaft combined mode (broker and controller), as in Kafka's own sample."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Consumer groups join at once instead of waiting for more members (tests, restarts).
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "24",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


KAFKA_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = warn
logger.controller.name = org.apache.kafka.controller
logger.controller.level = warn
"""

KAFKA_JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not led by '-'."""
    import base64
    import secrets

    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka(root: Path, port: int, controller_port: int) -> ServerSpec:
    """A single Kafka broker in KRaft combined mode on the jars scripts/install.sh resolved."""
    libs = kafka_libs_dir()
    java = shutil.which("java") or "/usr/bin/java"
    properties = root / "server.properties"
    log4j = root / "log4j2.properties"
    log_dir = root / "data"
    classpath = f"{libs}/*"
    jvm = (
        *KAFKA_JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={root / 'logs'}",
        "-cp",
        classpath,
    )

    def prepare() -> None:
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise RuntimeError(f"Kafka's jars are missing from {libs}: run scripts/install.sh")
        root.mkdir(parents=True, exist_ok=True)
        properties.write_text(kafka_properties(port, controller_port, log_dir))
        log4j.write_text(KAFKA_LOG4J2)
        if (log_dir / "meta.properties").exists():
            return
        run_as(
            [java, *jvm, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", _cluster_id(), "-c", str(properties)],
            None,
            root,
        )  # fmt: skip

    def ready() -> None:
        kafka_ready(f"{HOST}:{port}")

    return ServerSpec(
        name="kafka",
        argv=(java, *jvm, "kafka.Kafka", str(properties)),
        cwd=root,
        ports={"kafka": port, "controller": controller_port},
        ready=ready,
        prepare=prepare,
        start_timeout=90.0,
        stop_timeout=60.0,
    )


def kafka_ready(bootstrap: str) -> None:
    """The broker answers a metadata request and names itself in it."""
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    if not is_listening(int(port), host):  # cheap, and spares librdkafka's reconnect noise
        raise RuntimeError(f"nothing listens on {bootstrap} yet")
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
    metadata = admin.list_topics(timeout=2)
    if not metadata.brokers:
        raise RuntimeError("no broker in the metadata yet")


# --- Prometheus -------------------------------------------------------------------------------


PROMETHEUS_RULES = (
    REPO_ROOT / "observability" / "prometheus" / "recording-rules.yaml",
    REPO_ROOT / "observability" / "prometheus" / "alerting-rules.yaml",
)
"""The platform's rules, loaded straight from the repository, so a rule changed there is the rule
that `make up` evaluates."""


def prometheus_config(
    port: int,
    targets: Mapping[str, int],
    interval: str = "5s",
    rule_files: Iterable[Path] = PROMETHEUS_RULES,
) -> str:
    """A scrape config: Prometheus itself plus one job per service's /metrics, and the
    platform's recording and alerting rules (YAML, as JSON)."""
    import json

    jobs: dict[str, int] = {"prometheus": port, **targets}
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": name,
                "metrics_path": "/metrics",
                # The services label their series with `service` and `job` (a background job)
                # themselves, as the chart's monitors also honour.
                "honor_labels": True,
                "static_configs": [{"targets": [f"{HOST}:{target}"], "labels": {"service": name}}],
            }
            for name, target in jobs.items()
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def prometheus(root: Path, port: int, targets: Mapping[str, int]) -> ServerSpec:
    """Prometheus scraping `targets` (name -> port on 127.0.0.1) and itself."""
    config = root / "prometheus.yml"

    def prepare() -> None:
        (root / "data").mkdir(parents=True, exist_ok=True)
        config.write_text(prometheus_config(port, targets))

    def ready() -> None:
        import urllib.request

        url = f"http://{HOST}:{port}/-/ready"
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()

    return ServerSpec(
        name="prometheus",
        argv=(
            shutil.which("prometheus") or "/usr/bin/prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'data'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address={HOST}:{port}",
        ),
        cwd=root,
        ports={"prometheus": port},
        ready=ready,
        prepare=prepare,
    )


# --- Mailpit ----------------------------------------------------------------------------------

MAILPIT_VERSION = "v1.33.1"
"""The one pin: scripts/install.sh builds github.com/axllent/mailpit at this version."""

MAILPIT_MAX_MESSAGES = 100_000
"""Mailpit prunes the oldest mail beyond this (its default, 500, would lose a benchmark's mail)."""


def mailpit_binary() -> Path:
    """Where scripts/install.sh puts the Mailpit binary (MAILPIT_BIN overrides)."""
    override = os.environ.get("MAILPIT_BIN")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "realtimeorder" / "mailpit" / MAILPIT_VERSION / "mailpit"


def mailpit(root: Path, smtp_port: int, http_port: int) -> ServerSpec:
    """Mailpit: an SMTP server that keeps every mail (any login or none, no TLS), with a web UI
    and a REST API (/api/v1/messages) on `http_port`; its SQLite database lives in `root`."""
    binary = mailpit_binary()
    argv = [
        str(binary),
        "--smtp", f"{HOST}:{smtp_port}",
        "--listen", f"{HOST}:{http_port}",
        "--database", str(root / "mailpit.db"),
        "--max", str(MAILPIT_MAX_MESSAGES),
        "--smtp-auth-accept-any",
        "--smtp-auth-allow-insecure",
        # A reverse DNS lookup per SMTP connection only slows a load test down.
        "--smtp-disable-rdns",
        # Otherwise /api/v1/info asks GitHub for the latest release.
        "--disable-version-check",
    ]  # fmt: skip

    def prepare() -> None:
        if not binary.is_file():
            raise RuntimeError(f"Mailpit is missing ({binary}): run scripts/install.sh")
        root.mkdir(parents=True, exist_ok=True)

    def ready() -> None:
        import urllib.request

        if not is_listening(smtp_port):
            raise RuntimeError(f"nothing listens on SMTP port {smtp_port} yet")
        url = f"http://{HOST}:{http_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()

    return ServerSpec(
        name="mailpit",
        argv=tuple(argv),
        cwd=root,
        ports={"smtp": smtp_port, "http": http_port},
        ready=ready,
        prepare=prepare,
        start_timeout=30.0,
    )


# --- SMS and push provider sink ---------------------------------------------------------------


def provider_sink(port: int) -> ServerSpec:
    """devstack/provider_sink.py: stands in for the SMS and push providers on `port`."""

    def ready() -> None:
        import urllib.request

        url = f"http://{HOST}:{port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()

    return ServerSpec(
        name="provider-sink",
        argv=(sys.executable, "-m", "devstack.provider_sink", "--port", str(port)),
        cwd=REPO_ROOT,
        ports={"http": port},
        ready=ready,
        env={"PYTHONUNBUFFERED": "1"},
        start_timeout=30.0,
        stop_timeout=10.0,
    )


# --- Jaeger -----------------------------------------------------------------------------------

JAEGER_VERSION = "v1.76.0"
"""The one pin: scripts/install.sh builds github.com/jaegertracing/jaeger/cmd/jaeger (Jaeger v2,
an OpenTelemetry Collector with Jaeger's storage and query) at this module version."""

JAEGER_MAX_TRACES = 100_000
"""Traces kept in memory; the oldest go first (nothing is written to disk)."""


@dataclass(frozen=True)
class JaegerPorts:
    otlp_http: int
    """Where services send spans (OTEL_EXPORTER_OTLP_ENDPOINT, OTLP over HTTP)."""
    query_http: int
    """The query API (/api/services, /api/traces/<id>) and the web UI."""
    query_grpc: int


def jaeger_binary() -> Path:
    """Where scripts/install.sh puts the Jaeger binary (JAEGER_BIN overrides)."""
    override = os.environ.get("JAEGER_BIN")
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "realtimeorder" / "jaeger" / JAEGER_VERSION / "jaeger"


def jaeger_config(ports: JaegerPorts) -> str:
    """Jaeger v2's collector config: OTLP/HTTP in, memory storage, the query API out; every
    listener on loopback and nothing else listening (its all-in-one default opens a dozen
    ports, its own metrics on 8888 among them)."""
    return f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: {HOST}:{ports.query_http}
    grpc:
      endpoint: {HOST}:{ports.query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: {JAEGER_MAX_TRACES}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {HOST}:{ports.otlp_http}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


def jaeger(root: Path, ports: JaegerPorts) -> ServerSpec:
    """Jaeger, the trace store: takes the services' spans over OTLP/HTTP and answers its query
    API on `query_http`. Built from its Go module, its web UI is only a placeholder page (the
    UI bundle is not in the module); the API works (`/api/traces?service=gateway`)."""
    binary = jaeger_binary()
    config = root / "jaeger.yaml"

    def prepare() -> None:
        if not binary.is_file():
            raise RuntimeError(f"Jaeger is missing ({binary}): run scripts/install.sh")
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(jaeger_config(ports))

    def ready() -> None:
        import urllib.request

        if not is_listening(ports.otlp_http):
            raise RuntimeError(f"nothing listens on OTLP port {ports.otlp_http} yet")
        url = f"http://{HOST}:{ports.query_http}/api/services"
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()

    return ServerSpec(
        name="jaeger",
        argv=(str(binary), "--config", str(config)),
        cwd=root,
        ports={
            "otlp-http": ports.otlp_http,
            "query-http": ports.query_http,
            "query-grpc": ports.query_grpc,
        },
        ready=ready,
        prepare=prepare,
        start_timeout=30.0,
    )
