"""One PostgreSQL role per service: each migrates and uses its own schema and reads no other's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors

from devstack.roles import SCHEMA_OWNERS, ensure_roles
from devstack.testing import PostgresServer
from services.inventory import repository as inventory
from services.kit.db import apply_migrations, create_pool
from services.kit.outbox import KIT_MIGRATIONS
from services.kit.settings import ServiceSettings
from services.orders import repository as orders

pytestmark = pytest.mark.integration

PASSWORDS = {role: f"{role}-password" for role in SCHEMA_OWNERS}


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    name = postgres_server.create_database("roles")
    # A schema the superuser made before roles existed: the role takes it over. And a role an
    # older stack granted CREATE on the database: the grant is taken back.
    with psycopg.connect(postgres_server.conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.legacy (id bigserial PRIMARY KEY)")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'orders'").fetchone():
            conn.execute("CREATE ROLE orders LOGIN")  # roles outlive the test's database
        conn.execute(f'GRANT CONNECT, CREATE ON DATABASE "{name}" TO orders')
    ensure_roles(postgres_server.conninfo(name), name, PASSWORDS)
    ensure_roles(postgres_server.conninfo(name), name, PASSWORDS)  # idempotent
    return name


def role_settings(postgres_server: PostgresServer, database: str, role: str) -> ServiceSettings:
    env: dict[str, Any] = postgres_server.env(database)
    env |= {"DB_USER": role, "DB_PASSWORD": PASSWORDS[role], "DB_POOL_MIN": 1, "DB_POOL_MAX": 1}
    return ServiceSettings(**env)


def as_role(postgres_server: PostgresServer, database: str, role: str) -> str:
    return role_settings(postgres_server, database, role).db_conninfo


async def migrate_as(postgres_server: PostgresServer, database: str, role: str) -> None:
    pool = create_pool(role_settings(postgres_server, database, role), role)
    await pool.open()
    try:
        await apply_migrations(pool, role, KIT_MIGRATIONS, prefix="kit:")
        migrations = {"orders": orders.MIGRATIONS, "inventory": inventory.MIGRATIONS}[role]
        await apply_migrations(pool, role, migrations)
    finally:
        await pool.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_each_role_migrates_its_schema_and_cannot_read_another(
    postgres_server: PostgresServer, database: str
) -> None:
    await migrate_as(postgres_server, database, "inventory")
    await migrate_as(postgres_server, database, "orders")

    with psycopg.connect(as_role(postgres_server, database, "orders"), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM orders.orders").fetchone() == (0,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM inventory.products")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE inventory.planted (id int)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.planted (id int)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA planted")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA IF NOT EXISTS orders")
        assert conn.execute(
            "SELECT has_database_privilege(current_database(), 'CREATE')"
        ).fetchone() == (False,)

    inventory_role = as_role(postgres_server, database, "inventory")
    with (
        psycopg.connect(inventory_role, autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM orders.outbox")


def test_a_schema_made_by_the_superuser_is_handed_to_its_role(
    postgres_server: PostgresServer, database: str
) -> None:
    with psycopg.connect(as_role(postgres_server, database, "analytics"), autocommit=True) as conn:
        conn.execute("INSERT INTO analytics.legacy DEFAULT VALUES")
        owner = conn.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'analytics'"
        ).fetchone()
        assert owner == ("analytics",)
