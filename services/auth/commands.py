"""Administrative commands of the auth service, run by the `realtimeorder` CLI."""

from __future__ import annotations

from services.auth.passwords import build_passwords
from services.auth.repository import MIGRATIONS, SCHEMA
from services.auth.service import ensure_admin
from services.auth.settings import Settings
from services.kit.db import apply_migrations, create_pool


async def create_admin(settings: Settings, email: str, password: str) -> None:
    """Create `email` as an admin or promote its account (`realtimeorder create-admin EMAIL`).

    Migrations are applied first, so this works before the service has ever started.
    """
    pool = create_pool(settings, SCHEMA)
    await pool.open(wait=True, timeout=30)
    try:
        await apply_migrations(pool, SCHEMA, MIGRATIONS)
        await ensure_admin(pool, build_passwords(settings), email, password)
    finally:
        await pool.close()
