"""Jaeger in the local stack: built by install.sh, run by `make up` on loopback only, the
services pointed at it; and a stack without its binary still starts, untraced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import servers, stack

PORTS = servers.JaegerPorts(otlp_http=14318, query_http=26686, query_grpc=26685)


def _listeners(config: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "endpoint":
                    found.append(str(value))
                walk(value)

    walk(config)
    return found


def test_jaeger_takes_otlp_and_answers_queries_on_loopback_only(tmp_path: Path) -> None:
    config = yaml.safe_load(servers.jaeger_config(PORTS))
    assert sorted(_listeners(config)) == [
        "127.0.0.1:14318",
        "127.0.0.1:26685",
        "127.0.0.1:26686",
    ]
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    # Its own metrics would listen on 8888 by default.
    assert config["service"]["telemetry"]["metrics"]["level"] == "none"
    spec = servers.jaeger(tmp_path, PORTS)
    assert spec.argv == (str(servers.jaeger_binary()), "--config", str(tmp_path / "jaeger.yaml"))


def test_jaeger_bin_overrides_the_built_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAEGER_BIN", raising=False)
    built = servers.jaeger_binary()
    assert built.parts[-3:] == ("jaeger", servers.JAEGER_VERSION, "jaeger")
    monkeypatch.setenv("JAEGER_BIN", "/opt/jaeger")
    assert servers.jaeger_binary() == Path("/opt/jaeger")


def test_install_builds_the_jaeger_version_pinned_in_servers() -> None:
    script = (Path(__file__).resolve().parents[3] / "scripts" / "install.sh").read_text()
    assert "s/^JAEGER_VERSION = " in script  # read from devstack/servers.py
    assert servers.JAEGER_VERSION not in script
    assert "./cmd/jaeger" in script


KEYS = stack.TokenKeys(Path("token-signing.pem"), Path("token-verify.pem"))


def test_with_jaeger_every_service_sends_it_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "jaeger"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAEGER_BIN", str(binary))
    config = stack.StackConfig.from_environ(tmp_path / ".run", {"JAEGER_OTLP_PORT": "14318"})
    assert config.traced
    env = stack.service_environment(config, KEYS, {})
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:14318"
    backing = {spec.name: spec for spec in stack.stages(config, KEYS, {})[1]}
    assert backing["jaeger"].ports["otlp-http"] == 14318
    assert config.all_ports()["jaeger_query"] == 16686


def test_without_its_binary_the_stack_runs_untraced_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JAEGER_BIN", str(tmp_path / "not-built"))
    config = stack.StackConfig.from_environ(tmp_path / ".run", {})
    assert not config.traced
    assert "scripts/install.sh" in config.skipped["jaeger"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in stack.service_environment(config, KEYS, {})
    assert all(spec.name != "jaeger" for stage in stack.stages(config, KEYS, {}) for spec in stage)
    assert not any(name.startswith("jaeger") for name in config.all_ports())
    stack.print_urls(config)
    summary = capsys.readouterr().out
    assert "(not started: jaeger:" in summary
    assert "Traces" not in summary
