from __future__ import annotations

import pytest

from services.cli import main, services


def test_every_service_package_is_runnable_and_the_kit_is_not() -> None:
    found = services()
    assert {"gateway", "auth", "orders", "inventory"} <= set(found)
    assert "kit" not in found


def test_an_unknown_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "kit"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
