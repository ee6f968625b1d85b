from __future__ import annotations

import pytest

from services.cli import main
from services.registry import runnable


def test_the_written_services_of_the_registry_are_runnable() -> None:
    assert {"gateway", "auth", "orders", "inventory"} <= set(runnable())


@pytest.mark.parametrize("name", ["kit", "registry", "nosuchservice"])
def test_anything_else_is_refused(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", name])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_worker_command_names_every_notification_channel() -> None:
    from services.cli import WORKER_CHANNELS
    from services.notifications.domain import Channel

    assert set(WORKER_CHANNELS) == {str(channel) for channel in Channel}


def test_an_unknown_worker_channel_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", "fax"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def serve_options(monkeypatch: pytest.MonkeyPatch, service: str) -> dict[str, object]:
    import uvicorn

    from services.kit import logs

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(logs, "configure_logging", lambda *args, **kwargs: None)
    main(["serve", service])
    return seen


def test_the_gateway_keeps_idle_connections_longer_than_the_clients_in_front_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.gateway.settings import Settings as GatewaySettings

    monkeypatch.delenv("HTTP_KEEP_ALIVE_SECONDS", raising=False)
    gateway = serve_options(monkeypatch, "gateway")
    orders = serve_options(monkeypatch, "orders")

    assert gateway["timeout_keep_alive"] == 75
    # The gateway's pool drops an idle upstream connection before the service does.
    assert orders["timeout_keep_alive"] == 5
    assert GatewaySettings().upstream_keepalive_seconds < 5

    monkeypatch.setenv("HTTP_KEEP_ALIVE_SECONDS", "120")
    assert serve_options(monkeypatch, "gateway")["timeout_keep_alive"] == 120
