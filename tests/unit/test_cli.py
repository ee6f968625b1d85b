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
