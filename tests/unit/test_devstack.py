"""The local stack's generated configuration, read back by the programs that consume it."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from devstack import roles, servers, stack
from devstack.platform import port_variable
from services.kit.keys import SigningKey, verifying_keys
from services.registry import SERVICES, Service

PASSWORDS = {role: f"{role}-password" for role in roles.SCHEMA_OWNERS}
OVERRIDES = {
    "POSTGRES_PORT": "15432",
    "KAFKA_PORT": "19092",
    "RABBITMQ_PORT": "15673",
    "AUTH_PORT": "13001",
    "GATEWAY_PORT": "13000",
    "MAILPIT_SMTP_PORT": "11025",
    "MAILPIT_HTTP_PORT": "18025",
    "PROVIDER_SINK_PORT": "18026",
    "SMS_WORKER_PORT": "13012",
}


def make_config(tmp_path: Path, environ: dict[str, str] | None = None) -> stack.StackConfig:
    return stack.StackConfig.from_environ(tmp_path / ".run", environ or {})


def parse_supervisord_conf(path: Path) -> dict[str, Any]:
    options = ServerOptions()
    options.realize(args=["-c", str(path)])
    return {
        process.name: process
        for group in options.process_group_configs
        for process in group.process_configs
    }


def test_ports_default_to_the_seed_and_follow_their_variables(tmp_path: Path) -> None:
    defaults = make_config(tmp_path)
    assert defaults.ports["postgres"] == 5432
    assert defaults.ports["kafka"] == 9092
    assert defaults.ports["rabbitmq_management"] == 15672
    assert defaults.ports["prometheus"] == 9090
    assert defaults.services.get("gateway") == 3000

    custom = make_config(tmp_path, OVERRIDES)
    assert custom.ports["postgres"] == 15432
    assert custom.ports["kafka"] == 19092
    assert custom.services.get("auth") == 13001


def test_mail_and_provider_stand_ins_and_workers_have_their_ports(tmp_path: Path) -> None:
    defaults = make_config(tmp_path)
    assert defaults.ports["mailpit_smtp"] == 1025
    assert defaults.ports["mailpit_http"] == 8025
    assert defaults.ports["provider_sink"] == 8026
    assert defaults.workers == {"email": 3011, "sms": 3012, "push": 3013}
    assert defaults.all_ports()["push-worker"] == 3013

    custom = make_config(tmp_path, OVERRIDES)
    assert custom.ports["mailpit_smtp"] == 11025
    assert custom.ports["mailpit_http"] == 18025
    assert custom.ports["provider_sink"] == 18026
    assert custom.workers["sms"] == 13012


def test_the_workers_run_after_the_services_with_their_environment(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    plan = stack.stages(config, keys(tmp_path), PASSWORDS)
    assert {spec.name for spec in plan[1]} >= {"mailpit", "provider-sink"}
    assert [spec.name for spec in plan[stack.SERVICE_STAGE + 1]] == [
        "email-worker",
        "sms-worker",
        "push-worker",
    ]
    sms = plan[stack.SERVICE_STAGE + 1][1]
    assert sms.argv[-2:] == ("worker", "sms")
    assert sms.env["PORT"] == "13012"
    assert sms.env["SMS_PROVIDER_URL"] == "http://127.0.0.1:18026/sms"
    assert sms.env["DB_PORT"] == "15432"
    assert sms.ports == {"http": 13012}


def test_without_the_notifications_service_no_worker_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "SERVICES", (*SERVICES, Service("nosuchservice", 3999, "NO_URL")))
    monkeypatch.setattr(stack, "WORKERS_SERVICE", "nosuchservice")
    config = make_config(tmp_path)
    assert config.workers == {}
    assert config.skipped["sms-worker"] == "it works for nosuchservice, not started"
    assert stack.stages(config, keys(tmp_path), PASSWORDS)[stack.SERVICE_STAGE + 1] == []


def test_the_web_apps_run_last_against_the_gateway(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    web = stack.stages(config, keys(tmp_path), PASSWORDS)[-1]
    assert [spec.name for spec in web] == ["user-app", "admin-dashboard"]
    gateway = f"http://localhost:{config.services['gateway']}"
    assert all(spec.argv[-2:] == ("--api-url", gateway) for spec in web)


def test_a_service_without_a_package_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "SERVICES", (*SERVICES, Service("nosuchservice", 3999, "NO_URL")))
    config = make_config(tmp_path)
    assert config.skipped["nosuchservice"] == "services/nosuchservice/main.py does not exist yet"
    assert "nosuchservice" not in config.services
    assert config.services["auth"] == 3001


def test_every_service_has_its_own_port_and_port_variable() -> None:
    assert len({service.default_port for service in SERVICES}) == len(SERVICES)
    assert [port_variable(service) for service in SERVICES][:4] == [
        "GATEWAY_PORT",
        "AUTH_PORT",
        "ORDERS_PORT",
        "INVENTORY_PORT",
    ]


def test_services_point_at_the_stack_servers_with_the_seed_variables(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    env = stack.service_environment(config, keys(tmp_path), OVERRIDES)
    assert env["DB_PORT"] == "15432"
    assert env["DB_NAME"] == "realtimeorder"
    assert env["KAFKA_BROKER"] == "127.0.0.1:19092"
    assert env["RABBITMQ_URL"] == "amqp://admin:admin@127.0.0.1:15673/%2F"
    assert env["AUTH_SERVICE_URL"] == "http://127.0.0.1:13001"
    assert env["NOTIFICATION_SERVICE_URL"] == "http://127.0.0.1:3004"
    assert env["JWT_PUBLIC_KEY_FILE"] == str(tmp_path / "token-verify.pem")
    assert "JWT_PRIVATE_KEY_FILE" not in env
    assert env["APP_ENV"] == "development"
    assert env["SMTP_HOST"] == "127.0.0.1"
    assert env["SMTP_PORT"] == "11025"
    assert env["SMS_PROVIDER_URL"] == "http://127.0.0.1:18026/sms"
    assert env["PUSH_PROVIDER_URL"] == "http://127.0.0.1:18026/push"


def test_the_token_key_pair_is_generated_once_and_the_private_key_is_private(
    tmp_path: Path,
) -> None:
    first = stack.token_keys(tmp_path)
    private_pem = first.private_key_file.read_text()
    assert stack.token_keys(tmp_path) == first
    assert first.private_key_file.read_text() == private_pem
    assert first.private_key_file.stat().st_mode & 0o777 == 0o600
    signing = SigningKey.from_pem(private_pem)
    assert verifying_keys(first.public_key_file.read_text()).keys() == {signing.kid}


def test_each_service_connects_as_its_own_role(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    specs = {
        spec.name: spec
        for stage in stack.stages(config, keys(tmp_path), PASSWORDS)
        for spec in stage
    }
    for role in roles.SCHEMA_OWNERS:
        assert (specs[role].env["DB_USER"], specs[role].env["DB_PASSWORD"]) == (
            role,
            PASSWORDS[role],
        )
    assert specs["sms-worker"].env["DB_USER"] == "notifications"
    assert "DB_USER" not in specs["gateway"].env
    assert not [s for s in specs.values() if s.env.get("DB_USER") == "postgres"]


def test_role_passwords_are_generated_once_and_private(tmp_path: Path) -> None:
    first = stack.role_passwords(tmp_path)
    assert set(first) == set(roles.SCHEMA_OWNERS)
    assert len(set(first.values())) == len(first)
    assert stack.role_passwords(tmp_path) == first
    assert (tmp_path / "database-roles.env").stat().st_mode & 0o777 == 0o600


def test_only_auth_gets_the_private_key(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    specs = [spec for stage in stack.stages(config, keys(tmp_path), PASSWORDS) for spec in stage]
    holders = {spec.name for spec in specs if "JWT_PRIVATE_KEY_FILE" in spec.env}
    assert holders == {"auth"}
    services = [spec for spec in specs if spec.name in config.services]
    assert all(spec.env["JWT_PUBLIC_KEY_FILE"].endswith("token-verify.pem") for spec in services)


def test_supervisord_reads_back_every_program_as_specified(tmp_path: Path) -> None:
    config = make_config(tmp_path, OVERRIDES)
    awkward = tmp_path / "a%b\\c,d=e'f"
    plan = stack.stages(config, keys(awkward), PASSWORDS)
    config.logs.mkdir(parents=True)
    config.supervisord_conf.write_text(stack.render_supervisord_conf(config, plan))

    programs = parse_supervisord_conf(config.supervisord_conf)
    specs = {spec.name: spec for stage in plan for spec in stage}
    assert set(programs) == set(specs)
    for name, spec in specs.items():
        program = programs[name]
        assert program.command == shlex.join(stack.program_argv(spec))
        assert program.directory == str(spec.cwd)
        assert program.stopsignal == spec.stop_signal
        assert program.stdout_logfile == str(config.logs / f"{name}.log")
        environment = program.environment
        assert environment["DEVSTACK_RUN_DIR"] == str(config.run_dir)
        for key, value in spec.env.items():
            assert environment[key] == value

    gateway = programs["gateway"].environment
    assert gateway["JWT_PUBLIC_KEY_FILE"] == str(awkward / "token-verify.pem")
    assert gateway["RABBITMQ_URL"].endswith("/%2F")
    assert gateway["PORT"] == "13000"
    if os.geteuid() == 0:
        assert programs["postgres"].uid == pwd.getpwnam("postgres").pw_uid


def test_only_the_work_no_customer_waits_on_runs_at_a_lower_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    config = make_config(tmp_path)
    config.logs.mkdir(parents=True)
    plan = stack.stages(config, keys(tmp_path), PASSWORDS)
    config.supervisord_conf.write_text(stack.render_supervisord_conf(config, plan))
    programs = parse_supervisord_conf(config.supervisord_conf)
    specs = {spec.name: spec for stage in plan for spec in stage}
    batch = list(stack.BATCH_SCHEDULING)

    commands = {name: shlex.split(program.command) for name, program in programs.items()}
    assert all(command[:3] == batch for command in commands.values())
    niced = {name for name, command in commands.items() if command[3] == "nice"}
    assert niced == stack.BACKGROUND_PROGRAMS
    for name in ("notifications", "push-worker", "analytics", "prometheus"):
        assert commands[name] == [
            *batch,
            "nice",
            "-n",
            str(stack.BACKGROUND_NICENESS),
            *specs[name].argv,
        ]
    for name in ("gateway", "auth", "orders", "inventory", "postgres", "redis", "kafka"):
        assert commands[name] == [*batch, *specs[name].argv]


def test_without_chrt_programs_run_at_the_default_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    config = make_config(tmp_path)
    plan = stack.stages(config, keys(tmp_path), PASSWORDS)
    specs = {spec.name: spec for stage in plan for spec in stage}
    assert stack.program_argv(specs["orders"]) == specs["orders"].argv
    assert stack.program_argv(specs["analytics"])[0] == "nice"


def test_a_value_supervisord_cannot_hold_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(ValueError, match="JWT_PUBLIC_KEY_FILE cannot be passed"):
        stack.render_supervisord_conf(
            config, stack.stages(config, keys(tmp_path / 'a "b"'), PASSWORDS)
        )


def test_supervisord_stops_services_before_servers_and_epmd_last(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.logs.mkdir(parents=True)
    config.supervisord_conf.write_text(
        stack.render_supervisord_conf(config, stack.stages(config, keys(tmp_path), PASSWORDS))
    )
    programs = parse_supervisord_conf(config.supervisord_conf)
    priority = {name: p.priority for name, p in programs.items()}
    assert priority["epmd"] < priority["rabbitmq"] == priority["postgres"] < priority["auth"]
    assert priority["auth"] < priority["email-worker"]
    assert programs["email-worker"].startsecs == programs["auth"].startsecs == 2
    assert programs["mailpit"].priority == priority["postgres"]


def test_prometheus_config_is_valid_and_scrapes_every_service(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (scripts/install.sh installs it)")
    path = tmp_path / "prometheus.yml"
    path.write_text(servers.prometheus_config(9090, {"gateway": 3000, "auth": 3001}))
    result = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

    config = json.loads(path.read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {
        "prometheus": ["127.0.0.1:9090"],
        "gateway": ["127.0.0.1:3000"],
        "auth": ["127.0.0.1:3001"],
    }


def test_kafka_runs_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    text = servers.kafka_properties(9092, 9093, tmp_path / "data")
    properties = dict(line.split("=", 1) for line in text.splitlines())
    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["log.dirs"] == str(tmp_path / "data")


def test_kafka_version_comes_from_the_pom() -> None:
    version = servers.kafka_version()
    assert int(version.split(".")[0]) >= 4
    assert servers.kafka_libs_dir().parts[-2:] == (version, "libs")


def test_mailpit_takes_any_login_on_loopback_and_keeps_a_benchmark_of_mail(tmp_path: Path) -> None:
    spec = servers.mailpit(tmp_path, 1025, 8025)
    argv = list(spec.argv)

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert argv[0] == str(servers.mailpit_binary())
    assert servers.mailpit_binary().parts[-3:] == ("mailpit", servers.MAILPIT_VERSION, "mailpit")
    assert flag("--smtp") == "127.0.0.1:1025"
    assert flag("--listen") == "127.0.0.1:8025"
    assert flag("--database") == str(tmp_path / "mailpit.db")
    assert int(flag("--max")) >= 100_000
    assert {"--smtp-auth-accept-any", "--smtp-auth-allow-insecure"} <= set(argv)
    assert spec.ports == {"smtp": 1025, "http": 8025}


def test_install_builds_the_mailpit_version_pinned_in_servers() -> None:
    script = (Path(__file__).resolve().parents[2] / "scripts" / "install.sh").read_text()
    assert "s/^MAILPIT_VERSION = " in script  # read from devstack/servers.py
    assert servers.MAILPIT_VERSION not in script


def test_rabbitmq_listens_on_loopback_with_an_administrator() -> None:
    ports = servers.RabbitPorts(amqp=5672, management=15672, dist=25672, epmd=4371)
    conf = dict(
        line.split(" = ", 1) for line in servers.rabbitmq_conf(ports, "admin", "pw").splitlines()
    )
    assert conf["listeners.tcp.default"] == "127.0.0.1:5672"
    assert conf["management.tcp.ip"] == "127.0.0.1"
    assert conf["management.tcp.port"] == "15672"
    assert conf["default_user"] == "admin"
    assert conf["default_user_tags.administrator"] == "true"


def keys(run_dir: Path) -> stack.TokenKeys:
    """Key file names in `run_dir`, without making the keys."""
    return stack.TokenKeys(run_dir / "token-signing.pem", run_dir / "token-verify.pem")
