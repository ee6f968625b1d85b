"""`make up`, `make down`, `make status` and `make logs`: the whole platform under supervisord.

Everything lives under one git-ignored folder (`.run/` at the repository root, DEVSTACK_RUN_DIR
overrides): supervisord's config, socket and pid file, each process's log in `logs/<name>.log`,
each server's data in `data/<name>/`, generated secrets and `stack.json`, the ports the running
stack was started with (so `down` and `status` need no environment).

The token key pair is generated on the first `up` into `token-signing.pem` (auth's private key,
mode 600, JWT_PRIVATE_KEY_FILE for auth alone) and `token-verify.pem` (the public key,
JWT_PUBLIC_KEY_FILE for every service), and kept until `make clean`. Each service with a
schema connects as its own PostgreSQL role (devstack/roles.py), created or updated at every `up`
with a password generated once into `database-roles.env` (mode 600); the workers use
notifications' role.

`up` starts supervisord with every program stopped, then starts them in stages and waits for
each one's own readiness probe: the private epmd, then the backing servers (with Mailpit and the
SMS and push provider sink standing in for the notification providers, and Jaeger, the trace
store the services send their spans to), then the services, then
the notification channel workers (GET /readyz). `down` asks supervisord to stop everything
and exit, then checks every port is free.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devstack import roles, servers, web
from devstack.platform import port_variable, service_port
from devstack.ports import HOST, is_listening, wait_closed
from devstack.process import child_environment, log_tail
from devstack.servers import ServerSpec
from services.kit.keys import generate_pem_pair
from services.registry import SERVICES

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE = "realtimeorder"
DB_PASSWORD = "postgres"  # noqa: S105 - the seed's local development credentials
RABBITMQ_USER = "admin"
RABBITMQ_PASSWORD = "admin"  # noqa: S105 - the seed's local development credentials

# name -> (environment variable, default port)
SERVER_PORTS: dict[str, tuple[str, int]] = {
    "postgres": ("POSTGRES_PORT", 5432),
    "redis": ("REDIS_PORT", 6379),
    "rabbitmq": ("RABBITMQ_PORT", 5672),
    "rabbitmq_management": ("RABBITMQ_MANAGEMENT_PORT", 15672),
    "rabbitmq_dist": ("RABBITMQ_DIST_PORT", 25672),
    "rabbitmq_epmd": ("RABBITMQ_EPMD_PORT", 4371),
    "kafka": ("KAFKA_PORT", 9092),
    "kafka_controller": ("KAFKA_CONTROLLER_PORT", 9093),
    "prometheus": ("PROMETHEUS_PORT", 9090),
    "mailpit_smtp": ("MAILPIT_SMTP_PORT", 1025),
    "mailpit_http": ("MAILPIT_HTTP_PORT", 8025),
    "provider_sink": ("PROVIDER_SINK_PORT", 8026),
    "jaeger_otlp": ("JAEGER_OTLP_PORT", 4318),
    "jaeger_query": ("JAEGER_QUERY_PORT", 16686),
    "jaeger_grpc": ("JAEGER_GRPC_PORT", 16685),
}
JAEGER = "jaeger"
"""Optional: without its binary (its build failed, or install.sh was not run again) the stack runs
untraced, and the summary says so."""

# notification channel -> (environment variable, default port of its worker's probes)
WORKER_PORTS: dict[str, tuple[str, int]] = {
    "email": ("EMAIL_WORKER_PORT", 3011),
    "sms": ("SMS_WORKER_PORT", 3012),
    "push": ("PUSH_WORKER_PORT", 3013),
}
WORKERS_SERVICE = "notifications"
"""The workers send what this service queues, from its database: they run when it runs."""

SERVICE_STAGE = 2
"""The index in `stages` of the services; the workers' stage follows it."""


def worker_program(channel: str) -> str:
    return f"{channel}-worker"


def run_dir() -> Path:
    return Path(os.environ.get("DEVSTACK_RUN_DIR") or REPO_ROOT / ".run").resolve()


@dataclass(frozen=True)
class StackConfig:
    """What `up` runs and on which ports; saved as stack.json while the stack runs."""

    run_dir: Path
    ports: dict[str, int]
    services: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    """notification channel -> the port of its worker's /healthz, /readyz and /metrics"""

    @classmethod
    def from_environ(cls, run_dir: Path, environ: Mapping[str, str] = os.environ) -> StackConfig:
        ports = {
            name: int(environ.get(variable, default))
            for name, (variable, default) in SERVER_PORTS.items()
        }
        services: dict[str, int] = {}
        skipped: dict[str, str] = {}
        for service in SERVICES:
            reason = service.missing()
            if reason is None:
                services[service.name] = service_port(service, environ)
            else:
                skipped[service.name] = reason
        workers: dict[str, int] = {}
        for channel, (variable, default) in WORKER_PORTS.items():
            if WORKERS_SERVICE in services:
                workers[channel] = int(environ.get(variable, default))
            else:
                skipped[worker_program(channel)] = f"it works for {WORKERS_SERVICE}, not started"
        if not servers.jaeger_binary().is_file():
            skipped[JAEGER] = (
                f"no binary at {servers.jaeger_binary()} (scripts/install.sh builds it; its log"
                " is beside it); the services run without tracing"
            )
        return cls(run_dir, ports, services, skipped, workers)

    @property
    def traced(self) -> bool:
        """Whether Jaeger runs, and the services send it their spans."""
        return JAEGER not in self.skipped

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def supervisord_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"

    def save(self) -> None:
        data = asdict(self) | {"run_dir": str(self.run_dir)}
        self.state_file.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> StackConfig | None:
        try:
            data = json.loads((run_dir / "stack.json").read_text())
        except FileNotFoundError:
            return None
        return cls(
            run_dir,
            data["ports"],
            data["services"],
            data.get("skipped", {}),
            data.get("workers", {}),
        )

    def all_ports(self) -> dict[str, int]:
        workers = {worker_program(channel): port for channel, port in self.workers.items()}
        ports = self.ports
        if not self.traced:
            ports = {name: port for name, port in ports.items() if not name.startswith("jaeger_")}
        return ports | self.services | workers


@dataclass(frozen=True)
class TokenKeys:
    """The files of the token key pair: auth's private key and the public key."""

    private_key_file: Path
    public_key_file: Path


def token_keys(run_dir: Path) -> TokenKeys:
    """The stack's token key pair, generated on the first `up` and kept in the run folder."""
    keys = TokenKeys(run_dir / "token-signing.pem", run_dir / "token-verify.pem")
    if not (keys.private_key_file.exists() and keys.public_key_file.exists()):
        private_pem, public_pem = generate_pem_pair()
        run_dir.mkdir(parents=True, exist_ok=True)
        keys.private_key_file.touch(mode=0o600)
        keys.private_key_file.chmod(0o600)
        keys.private_key_file.write_text(private_pem)
        keys.public_key_file.write_text(public_pem)
    return keys


def role_passwords(run_dir: Path) -> dict[str, str]:
    """Each service role's password, generated once into the run folder (role=password lines)."""
    path = run_dir / "database-roles.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            role, sep, password = line.partition("=")
            if sep:
                values[role.strip()] = password.strip()
    missing = [role for role in roles.SCHEMA_OWNERS if role not in values]
    if missing:
        values |= {role: secrets.token_urlsafe(24) for role in missing}
        run_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text("".join(f"{role}={password}\n" for role, password in values.items()))
    return values


# --- what runs ----------------------------------------------------------------------------------


def service_environment(
    config: StackConfig, keys: TokenKeys, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """The variables every service reads, pointing at this stack's servers (seed names).

    Anything else set when `make up` starts supervisord (ADMIN_EMAIL and ADMIN_PASSWORD, LOG_LEVEL,
    CORS_ORIGINS...) reaches the services through its environment, and stays out of the
    config file.
    """
    ports = config.ports
    env = {
        "APP_ENV": "development",
        "DB_HOST": HOST,
        "DB_PORT": str(ports["postgres"]),
        "DB_NAME": DATABASE,
        "KAFKA_BROKER": f"{HOST}:{ports['kafka']}",
        "RABBITMQ_URL": (
            f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@{HOST}:{ports['rabbitmq']}/%2F"
        ),
        "REDIS_URL": f"redis://{HOST}:{ports['redis']}/0",
        "JWT_PUBLIC_KEY_FILE": str(keys.public_key_file),
        # The notification workers' providers: Mailpit for email, the sink for SMS and push.
        "SMTP_HOST": HOST,
        "SMTP_PORT": str(ports["mailpit_smtp"]),
        "SMS_PROVIDER_URL": f"http://{HOST}:{ports['provider_sink']}/sms",
        "PUSH_PROVIDER_URL": f"http://{HOST}:{ports['provider_sink']}/push",
        "PYTHONUNBUFFERED": "1",
    }
    if config.traced:
        # Every service and worker traces into Jaeger (services/kit/tracing.py).
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://{HOST}:{ports['jaeger_otlp']}"
    for service in SERVICES:
        if service.url_variable is not None:
            port = config.services.get(service.name) or service_port(service, environ)
            env[service.url_variable] = f"http://{HOST}:{port}"
    return env


def service_command(*arguments: str) -> tuple[str, ...]:
    """`realtimeorder <arguments>` from this interpreter's environment (`serve auth`)."""
    command = Path(sys.executable).parent / "realtimeorder"
    if command.exists():
        return (str(command), *arguments)
    return (sys.executable, "-m", "services.cli", *arguments)


def http_ready(url: str) -> Callable[[], None]:
    def probe() -> None:
        import urllib.request

        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            response.read()

    return probe


def service_spec(
    config: StackConfig,
    name: str,
    env: Mapping[str, str],
    keys: TokenKeys,
    passwords: Mapping[str, str],
) -> ServerSpec:
    """`realtimeorder serve <name>` as its database role; auth alone gets the private key."""
    env = {**env, **database_login(name, passwords)}
    if name == "auth":
        env["JWT_PRIVATE_KEY_FILE"] = str(keys.private_key_file)
    return _python_program(name, ("serve", name), config.services[name], env)


def worker_spec(
    config: StackConfig, channel: str, env: Mapping[str, str], passwords: Mapping[str, str]
) -> ServerSpec:
    """`realtimeorder worker <channel>`; PORT serves its probes and metrics."""
    port = config.workers[channel]
    env = {**env, **database_login(WORKERS_SERVICE, passwords)}
    return _python_program(worker_program(channel), ("worker", channel), port, env)


def database_login(service: str, passwords: Mapping[str, str]) -> dict[str, str]:
    """DB_USER and DB_PASSWORD of a service's own role; nothing for one without a schema."""
    if service not in passwords:
        return {}
    return {"DB_USER": service, "DB_PASSWORD": passwords[service]}


def _python_program(
    name: str, arguments: tuple[str, ...], port: int, env: Mapping[str, str]
) -> ServerSpec:
    return ServerSpec(
        name=name,
        argv=service_command(*arguments),
        cwd=REPO_ROOT,
        ports={"http": port},
        ready=http_ready(f"http://{HOST}:{port}/readyz"),
        env={**env, "PORT": str(port)},
        start_timeout=float(os.environ.get("SERVICE_START_TIMEOUT", "90")),
        stop_timeout=25.0,
    )


def place_postgres_data(config: StackConfig) -> None:
    """Make sure the unprivileged postgres user can reach PostgreSQL's data folder.

    A checkout inside a private folder (/root, a mode-700 temporary folder) is out of that
    user's reach; the data then lives in its home (/var/lib/postgresql/realtimeorder/...), and
    .run/data/postgres is a symbolic link to it, so `make clean` still finds it.
    """
    data = config.run_dir / "data"
    link = data / "postgres"
    data.mkdir(parents=True, exist_ok=True)
    user = servers.unprivileged_user("postgres")
    if link.exists() or link.is_symlink() or user is None or servers.can_reach(data, user):
        return
    home = Path(pwd.getpwnam(user).pw_dir)
    digest = hashlib.sha256(str(config.run_dir).encode()).hexdigest()[:12]
    elsewhere = home / "realtimeorder" / digest
    elsewhere.mkdir(parents=True, exist_ok=True)
    print(f"PostgreSQL's data goes to {elsewhere} ({user} cannot reach {data})")
    link.symlink_to(elsewhere)


def postgres_root(config: StackConfig) -> Path:
    link = config.run_dir / "data" / "postgres"
    return link.resolve() if link.is_symlink() else link


def clean() -> int:
    """Delete the run folder (data, logs, secrets) once the stack is down."""
    directory = run_dir()
    config = StackConfig.load(directory)
    if config is not None and supervisord_running(config):
        print("The stack is running: make down first.", file=sys.stderr)
        return 1
    link = directory / "data" / "postgres"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):  # the shared parent of such data folders, once empty
        (Path(pwd.getpwnam("postgres").pw_dir) / "realtimeorder").rmdir()
    print(f"Deleted {directory}.")
    return 0


def stages(
    config: StackConfig, keys: TokenKeys, passwords: Mapping[str, str]
) -> list[list[ServerSpec]]:
    """What `up` starts, in order: each stage is ready before the next one starts."""
    data, ports = config.run_dir / "data", config.ports
    rabbit_ports = servers.RabbitPorts(
        amqp=ports["rabbitmq"],
        management=ports["rabbitmq_management"],
        dist=ports["rabbitmq_dist"],
        epmd=ports["rabbitmq_epmd"],
    )
    env = service_environment(config, keys)
    scraped = config.services | {
        worker_program(channel): port for channel, port in config.workers.items()
    }
    tracing = []
    if config.traced:
        jaeger_ports = servers.JaegerPorts(
            otlp_http=ports["jaeger_otlp"],
            query_http=ports["jaeger_query"],
            query_grpc=ports["jaeger_grpc"],
        )
        tracing.append(servers.jaeger(data / "jaeger", jaeger_ports))
    return [
        [servers.epmd(ports["rabbitmq_epmd"])],
        [
            *tracing,
            servers.postgres(postgres_root(config), ports["postgres"], DB_PASSWORD),
            servers.redis(data / "redis", ports["redis"]),
            servers.rabbitmq(data / "rabbitmq", rabbit_ports, RABBITMQ_USER, RABBITMQ_PASSWORD),
            servers.kafka(data / "kafka", ports["kafka"], ports["kafka_controller"]),
            servers.prometheus(data / "prometheus", ports["prometheus"], scraped),
            servers.mailpit(data / "mailpit", ports["mailpit_smtp"], ports["mailpit_http"]),
            servers.provider_sink(ports["provider_sink"]),
        ],
        [service_spec(config, name, env, keys, passwords) for name in config.services],
        # After the services: the workers use the queues and tables notifications creates.
        [worker_spec(config, channel, env, passwords) for channel in config.workers],
        web.specs(f"http://localhost:{config.services['gateway']}"),
    ]


# --- supervisord ----------------------------------------------------------------------------------


def _quote(value: str) -> str:
    """A value for supervisord's config: its parser expands %(...)s, so % is doubled."""
    return value.replace("%", "%%")


def _environment_line(env: Mapping[str, str]) -> str:
    """supervisord's KEY="value",... syntax, which has no escapes: refuse what it cannot hold."""
    pairs = []
    for key, value in env.items():
        if '"' in value or value.startswith("'") or value.endswith("'"):
            raise ValueError(f"{key} cannot be passed through supervisord: it contains quotes")
        pairs.append(f'{key}="{_quote(value)}"')
    return ",".join(pairs)


BACKGROUND_PROGRAMS = frozenset(
    {
        "notifications",
        "email-worker",
        "sms-worker",
        "push-worker",
        "rabbitmq",
        "analytics",
        "prometheus",
        "jaeger",
        "mailpit",
        "provider-sink",
    }
)
"""The programs no customer waits on: notification delivery (the service, its workers, their
broker and the providers' stand-ins), analytics, and the observability servers. They run at
`BACKGROUND_NICENESS`; gateway, auth, orders, inventory, PostgreSQL, Redis and Kafka, on which
an order's confirmation waits, stay at the default priority."""

BACKGROUND_NICENESS = 10
"""The scheduler's weight at niceness 10 is a tenth of the default's. When every core is busy,
an order's confirmation no longer waits behind a notification's delivery or an analytics
projection; the background catches up as soon as a core is free, and loses nothing (its
work waits in Kafka and RabbitMQ). On two shared cores, at 20 orders/s, the p99 from create
to the CONFIRMED push was a median 58 ms over seven runs, against 84.5 ms over eight at the
default priority (docs/benchmarks-analysis.md). The bench reports how long after each rate the
notifications caught up."""


BATCH_SCHEDULING = ("chrt", "--batch", "0")
"""Every program runs under Linux's batch policy (SCHED_BATCH, util-linux's `chrt`): a process
woken up does not preempt the one running, which keeps its core until it waits or its slice
ends. An order crosses the stack as messages between processes, and at the default policy each
message woke its receiver straight onto the core of its sender: 47 to 76 involuntary context
switches per order, against 12 to 19 in batch. On two shared cores, alternated runs of the
same build gave 0 to 23% less CPU per order (all processes; a median of 15%), more orders/s
held at 150 offered in three pairs of four, and the same p99 at 20 orders/s
(docs/benchmarks-analysis.md). Priorities are unchanged: `nice` still weighs the background
below the rest. supervisord runs so too: every line a program logs wakes it. Skipped where
`chrt` is missing."""


def in_batch(argv: Sequence[str]) -> tuple[str, ...]:
    """`argv` run in batch scheduling (`BATCH_SCHEDULING`), as it is where `chrt` is missing."""
    if shutil.which(BATCH_SCHEDULING[0]) is None:
        return tuple(argv)
    return (*BATCH_SCHEDULING, *argv)


def program_argv(spec: ServerSpec) -> tuple[str, ...]:
    """`spec`'s command line, run under `nice` when it is one of `BACKGROUND_PROGRAMS`, and in
    batch scheduling."""
    if spec.name in BACKGROUND_PROGRAMS:
        return in_batch(("nice", "-n", str(BACKGROUND_NICENESS), *spec.argv))
    return in_batch(spec.argv)


def render_program(spec: ServerSpec, priority: int, logs: Path, *, service: bool) -> str:
    lines = [
        f"[program:{spec.name}]",
        f"command={_quote(shlex.join(program_argv(spec)))}",
        f"directory={_quote(str(spec.cwd))}",
        "autostart=false",
        # A crashed process comes back; one that cannot start at all is left FATAL for `up`
        # to report.
        "autorestart=unexpected",
        "exitcodes=0",
        f"startsecs={2 if service else 1}",
        "startretries=2",
        f"priority={priority}",
        f"stopsignal={signal.Signals(spec.stop_signal).name.removeprefix('SIG')}",
        f"stopwaitsecs={int(spec.stop_timeout)}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={_quote(str(logs / f'{spec.name}.log'))}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
    ]
    if spec.user is not None:
        lines.append(f"user={spec.user}")
    if spec.env:
        lines.append(f"environment={_environment_line(spec.env)}")
    return "\n".join(lines) + "\n"


def render_supervisord_conf(config: StackConfig, plan: Sequence[Sequence[ServerSpec]]) -> str:
    run = config.run_dir
    head = f"""\
[unix_http_server]
file={_quote(str(config.socket))}
chmod=0700

[supervisord]
logfile={_quote(str(config.logs / "supervisord.log"))}
logfile_maxbytes=5MB
logfile_backups=1
pidfile={_quote(str(run / "supervisord.pid"))}
childlogdir={_quote(str(config.logs))}
directory={_quote(str(REPO_ROOT))}
identifier=realtimeorder
minfds=4096
environment=DEVSTACK_RUN_DIR="{_quote(str(run))}"

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{_quote(str(config.socket))}
"""
    programs = [
        render_program(spec, 100 * (stage + 1), config.logs, service=stage >= SERVICE_STAGE)
        for stage, specs in enumerate(plan)
        for spec in specs
    ]
    return "\n".join([head, *programs])


def supervisor(config: StackConfig) -> Any:
    """An XML-RPC proxy to our supervisord over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, serverurl=f"unix://{config.socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def supervisord_running(config: StackConfig) -> bool:
    if not config.socket.exists():
        return False
    try:
        return bool(supervisor(config).getState()["statename"] == "RUNNING")
    except (OSError, xmlrpc.client.Error):
        return False


def start_supervisord(config: StackConfig) -> None:
    executable = Path(sys.executable).parent / "supervisord"
    # supervisord forks into the background and this first process exits at once.
    result = subprocess.run(
        in_batch((str(executable), "-c", str(config.supervisord_conf))),
        check=False,
        env=child_environment(),
        cwd=REPO_ROOT,
    )
    if result.returncode != 0:
        raise SystemExit(f"supervisord exited with {result.returncode}")
    deadline = time.monotonic() + 20
    while not supervisord_running(config):
        if time.monotonic() > deadline:
            raise SystemExit(
                f"supervisord did not start; {config.logs / 'supervisord.log'}:\n"
                + log_tail(config.logs / "supervisord.log")
            )
        time.sleep(0.1)


def _process_states(config: StackConfig) -> dict[str, dict[str, Any]]:
    return {info["name"]: info for info in supervisor(config).getAllProcessInfo()}


# --- up ---------------------------------------------------------------------------------------


def _ports_in_use(config: StackConfig) -> list[str]:
    variables = {name: variable for name, (variable, _) in SERVER_PORTS.items()}
    variables |= {service.name: port_variable(service) for service in SERVICES}
    variables |= {worker_program(c): variable for c, (variable, _) in WORKER_PORTS.items()}
    return [
        f"{port} ({name}; set {variables[name]} to use another port)"
        for name, port in config.all_ports().items()
        if is_listening(port)
    ]


def _answers(spec: ServerSpec) -> bool:
    try:
        spec.ready()
    except Exception:  # not ready yet: any failure of the probe
        return False
    return True


# supervisord's states of a program that is not running and will not start by itself
STOPPED_STATES = frozenset({"STOPPED", "EXITED", "FATAL"})


def _wait_ready(config: StackConfig, spec: ServerSpec, started: float | None) -> str | None:
    """Poll one program until its probe answers; the reason it failed, or None once ready.

    `started` is when `up` started it, or None when it was running already.
    """
    began = time.monotonic() if started is None else started
    rpc = supervisor(config)  # one connection per thread: the proxy is not thread-safe
    while True:
        state = str(rpc.getProcessInfo(spec.name)["statename"])
        elapsed = time.monotonic() - began
        if state in STOPPED_STATES:
            return state
        if elapsed > spec.start_timeout:
            return f"not ready after {spec.start_timeout:.0f}s"
        if _answers(spec):
            if started is not None:
                print(f"  {spec.name:<14} ready in {elapsed:4.1f}s", flush=True)
            return None
        time.sleep(0.2)


def _wait_stage(
    config: StackConfig, started: Mapping[str, tuple[ServerSpec, float | None]]
) -> None:
    """Wait until each program of a stage is ready; exit with the log tails of those that fail."""
    if not started:
        return
    with ThreadPoolExecutor(max_workers=len(started)) as pool:
        waits = {
            name: pool.submit(_wait_ready, config, spec, began)
            for name, (spec, began) in started.items()
        }
    failures = {name: wait.result() for name, wait in waits.items() if wait.result()}
    if failures:
        report = []
        for name, reason in failures.items():
            log = config.logs / f"{name}.log"
            report.append(
                f"{name} failed to start ({reason}). Last lines of {log}:\n{log_tail(log)}"
            )
        raise SystemExit(
            "\n" + "\n\n".join(report) + "\n\n`make logs` shows every log; `make down` stops "
            "the rest."
        )


def ensure_database(config: StackConfig) -> None:
    import psycopg
    from psycopg import sql

    conninfo = servers.postgres_conninfo(config.ports["postgres"], DB_PASSWORD)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def up() -> int:
    directory = run_dir()
    running = supervisord_running(StackConfig(directory, {}, {}))
    config = StackConfig.load(directory) if running else None
    if config is None:
        config = StackConfig.from_environ(directory)
    for name, reason in config.skipped.items():
        print(f"skipping {name}: {reason}")
    place_postgres_data(config)
    passwords = role_passwords(directory)
    plan = stages(config, token_keys(directory), passwords)

    if running:
        states = _process_states(config)
        unknown = [spec.name for stage in plan for spec in stage if spec.name not in states]
        if unknown:
            print(
                f"The running stack predates {', '.join(unknown)}: `make down`, then `make up`.",
                file=sys.stderr,
            )
            return 1
        stopped = [name for name, info in states.items() if info["statename"] in STOPPED_STATES]
        if stopped:
            print(f"The stack is running except {', '.join(stopped)}: starting those.")
        else:
            print("The stack is already running; checking that each program answers.")
    else:
        busy = _ports_in_use(config)
        if busy:
            print("These ports are already in use:\n  " + "\n  ".join(busy), file=sys.stderr)
            return 1
        config.logs.mkdir(parents=True, exist_ok=True)
        for log in config.logs.glob("*.log"):  # the previous run's logs stay for one more
            log.replace(log.with_suffix(".log.1"))
        config.save()
        config.supervisord_conf.touch(mode=0o600)  # it holds the stack's passwords
        config.supervisord_conf.write_text(render_supervisord_conf(config, plan))
        start_supervisord(config)

    rpc = supervisor(config)
    for stage in plan:
        states = _process_states(config)
        started: dict[str, tuple[ServerSpec, float | None]] = {}
        for spec in stage:
            if states[spec.name]["statename"] not in STOPPED_STATES:
                started[spec.name] = (spec, None)
                continue
            if spec.prepare is not None:
                spec.prepare()
            started[spec.name] = (spec, time.monotonic())
            rpc.startProcess(spec.name, False)
        _wait_stage(config, started)
        if any(spec.name == "postgres" for spec in stage):
            ensure_database(config)
            conninfo = servers.postgres_conninfo(config.ports["postgres"], DB_PASSWORD, DATABASE)
            roles.ensure_roles(conninfo, DATABASE, passwords)
    print_urls(config)
    return 0


def print_urls(config: StackConfig) -> None:
    ports, services = config.ports, config.services
    print("\nRealTimeOrder is up:")
    if "gateway" in services:
        print(f"  gateway              http://localhost:{services['gateway']}")
    for name, url in web.urls().items():
        print(f"  {name:<20} {url}")
    for name, port in services.items():
        if name != "gateway":
            print(f"  {name:<20} http://localhost:{port}")
    print(
        f"  RabbitMQ management  http://localhost:{ports['rabbitmq_management']}"
        f" ({RABBITMQ_USER}/{RABBITMQ_PASSWORD})\n"
        f"  Prometheus           http://localhost:{ports['prometheus']}\n"
        f"  Kafka bootstrap      {HOST}:{ports['kafka']}\n"
        f"  PostgreSQL           postgresql://postgres:{DB_PASSWORD}@{HOST}:{ports['postgres']}"
        f"/{DATABASE}\n"
        f"  Redis                redis://{HOST}:{ports['redis']}/0\n"
        f"  Mail (Mailpit web UI): http://{HOST}:{ports['mailpit_http']}"
        f" (SMTP {HOST}:{ports['mailpit_smtp']})\n"
        f"  SMS and push sink    http://{HOST}:{ports['provider_sink']}"
        f" (JSON: /messages?channel=sms|push)"
    )
    if config.traced:
        print(
            f"  Traces (Jaeger API)  http://{HOST}:{ports['jaeger_query']}/api/traces?service=gateway"
            f" (OTLP in: http://{HOST}:{ports['jaeger_otlp']}; its web UI is a placeholder)"
        )
    for channel, port in config.workers.items():
        print(f"  {worker_program(channel):<20} http://localhost:{port}/readyz")
    print(f"  logs                 {config.logs}/<name>.log (make logs)")
    for name, reason in config.skipped.items():
        print(f"  (not started: {name}: {reason})")


# --- down -------------------------------------------------------------------------------------


def _listening_pids(port: int) -> set[int]:
    """Pids of processes listening on 127.0.0.1:port (from `ss`)."""
    output = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    pids: set[int] = set()
    for part in output.split("pid=")[1:]:
        digits = part.split(",", 1)[0]
        if digits.isdigit():
            pids.add(int(digits))
    return pids


def _belongs_to(pid: int, directory: Path) -> bool:
    """Whether supervisord started `pid` for this stack.

    supervisord marks each program's environment; servers that reuse that memory for their
    process title (Redis) still run in their data folder under `directory`.
    """
    proc = Path(f"/proc/{pid}")
    try:
        environ = (proc / "environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return False
    return f"DEVSTACK_RUN_DIR={directory}".encode() in environ or cwd.is_relative_to(directory)


def _stop_pids(pids: Iterable[int], timeout: float = 30.0) -> None:
    """SIGTERM each pid, wait for all of them together, then SIGKILL what is left."""
    pids = frozenset(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running and not a zombie (nothing reaps supervisord's children once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def down() -> int:
    directory = run_dir()
    config = StackConfig.load(directory)
    if config is None:
        print("Nothing to stop (no stack.json under the run folder).")
        return 0
    if supervisord_running(config):
        pid = int((directory / "supervisord.pid").read_text().strip())
        print("Stopping every program, then supervisord...", flush=True)
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            supervisor(config).shutdown()
        deadline = time.monotonic() + 120
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            print(f"supervisord (pid {pid}) is still running", file=sys.stderr)
            return 1

    epmd_port = config.ports["rabbitmq_epmd"]
    if is_listening(epmd_port):
        # An epmd that an Erlang tool daemonised on our private port outlives supervisord.
        subprocess.run(["epmd", "-port", str(epmd_port), "-kill"], capture_output=True, check=False)

    # Programs whose supervisord died (killed, machine suspended...) still hold their ports.
    leftovers: set[int] = set()
    for name, port in config.all_ports().items():
        for pid in _listening_pids(port):
            if _belongs_to(pid, directory):
                print(f"stopping leftover {name} process {pid}")
                leftovers.add(pid)
    _stop_pids(leftovers)

    still_open = wait_closed(config.all_ports().values(), timeout=20)
    if still_open:
        print(f"ports still in use: {still_open}", file=sys.stderr)
        return 1
    print("Stopped; every port of the stack is free.")
    return 0


# --- status and logs ------------------------------------------------------------------------------


def status() -> int:
    directory = run_dir()
    config = StackConfig.load(directory)
    if config is None or not supervisord_running(config):
        print("The stack is not running (make up starts it).")
        return 0
    plan = stages(config, token_keys(directory), role_passwords(directory))
    ports = {spec.name: list(spec.ports.values()) for stage in plan for spec in stage}
    print(f"{'program':<14} {'state':<9} {'pid':>7}  {'ports':<24} details")
    for name, info in _process_states(config).items():
        shown = ",".join(
            f"{port}{'' if is_listening(port) else '(closed)'}" for port in ports.get(name, [])
        )
        print(
            f"{name:<14} {info['statename']:<9} {info['pid'] or '-':>7}  {shown:<24} "
            f"{info['description']}"
        )
    for name, reason in config.skipped.items():
        print(f"{name:<14} {'SKIPPED':<9} {'-':>7}  {'':<24} {reason}")
    return 0


def logs(names: Sequence[str], lines: int, follow: bool) -> int:
    directory = run_dir() / "logs"
    files = (
        sorted(directory.glob("*.log")) if not names else [directory / f"{n}.log" for n in names]
    )
    files = [path for path in files if path.exists()]
    if not files:
        print(f"No logs under {directory}.")
        return 1
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(["tail", "-n", str(lines), "-F", *map(str, files)], check=False)
        return 0
    for path in files:
        print(f"==> {path} <==\n{log_tail(path, lines)}\n")
    return 0
