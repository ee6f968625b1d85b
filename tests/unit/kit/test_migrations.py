from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.kit.db import migration_files
from services.kit.outbox import KIT_MIGRATIONS, NOTIFY_CHANNEL
from services.notifications import repository as notifications
from services.notifications.service import RELAY_CHANNEL


def test_files_apply_in_numeric_order(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "0010_c.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    assert [v for v, _ in migration_files(tmp_path)] == ["0001_a", "0002_b", "0010_c"]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_description"):
        migration_files(tmp_path)


def test_kit_ships_its_outbox_migration() -> None:
    assert [v for v, _ in migration_files(KIT_MIGRATIONS)] == [
        "0001_outbox_and_processed_events",
        "0002_outbox_trace_context",
        "0003_outbox_wakes_its_relay",
    ]


@pytest.mark.parametrize(
    ("migrations", "table", "channel"),
    [
        (KIT_MIGRATIONS, "outbox", NOTIFY_CHANNEL),
        (notifications.MIGRATIONS, "deliveries", RELAY_CHANNEL),
    ],
)
def test_the_wake_up_triggers_notify_the_channel_their_relay_listens_on(
    migrations: Path, table: str, channel: str
) -> None:
    """The trigger names its channel in SQL, the relay in Python: the two must agree."""
    sql = "\n".join(path.read_text() for _, path in migration_files(migrations))
    triggers = re.findall(rf"ON {table}\b[^;]*?notify_relay\('(\w+)'\)", sql, re.DOTALL)
    assert triggers
    assert set(triggers) == {channel}
