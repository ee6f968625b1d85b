"""The bundled PostgreSQL's role script (templates/postgresql/roles.yaml) on a real PostgreSQL.

The chart's `roles` container runs `roles.sql` with psql once per service role; here the same
rendered script runs the same way against a test server, and then each service migrates as its
role and cannot read another's tables.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from devstack.testing import PostgresServer
from services.inventory import repository as inventory
from services.kit.db import apply_migrations, create_pool
from services.kit.outbox import KIT_MIGRATIONS
from services.kit.settings import ServiceSettings
from services.orders import repository as orders
from tests.k8s.test_chart import RELEASE, helm_template, named

pytestmark = [pytest.mark.k8s, pytest.mark.asyncio(loop_scope="session")]

ROLES = ("auth", "orders", "inventory", "notifications", "analytics")


def apply_chart_roles(helm: Path, server: PostgresServer, database: str, tmp_path: Path) -> None:
    docs = helm_template(helm)
    data = named(docs, "ConfigMap", f"{RELEASE}-postgresql-roles")["data"]
    statefulset = named(docs, "StatefulSet", f"{RELEASE}-postgresql")
    (sidecar,) = [
        c for c in statefulset["spec"]["template"]["spec"]["containers"] if c["name"] == "roles"
    ]
    roles = next(e["value"] for e in sidecar["env"] if e["name"] == "SERVICE_ROLES").split()
    assert tuple(roles) == ROLES
    script = tmp_path / "roles.sql"
    script.write_text(data["roles.sql"])
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("psql is needed to run the chart's role script")
    for role in roles:
        subprocess.run(
            [
                *(psql, "-q", "-X", server.conninfo(database), "-v", "ON_ERROR_STOP=1"),
                *("-v", f"role={role}", "-v", f"password={role}'s password"),
                *("-v", f"database={database}", "-f", str(script)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )


def role_settings(server: PostgresServer, database: str, role: str) -> ServiceSettings:
    env: dict[str, Any] = server.env(database)
    env |= {
        "DB_USER": role,
        "DB_PASSWORD": f"{role}'s password",
        "DB_POOL_MIN": 1,
        "DB_POOL_MAX": 1,
    }
    return ServiceSettings(**env)


async def migrate_as(server: PostgresServer, database: str, role: str, migrations: Path) -> None:
    pool = create_pool(role_settings(server, database, role), role)
    await pool.open()
    try:
        await apply_migrations(pool, role, KIT_MIGRATIONS, prefix="kit:")
        await apply_migrations(pool, role, migrations)
    finally:
        await pool.close()


async def test_the_chart_script_gives_each_service_a_role_that_reads_no_other_schema(
    helm: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = postgres_server.create_database("chart_roles")
    with psycopg.connect(postgres_server.conninfo(database), autocommit=True) as conn:
        # What an install from before the roles left behind: the superuser's orders schema.
        conn.execute("CREATE SCHEMA orders")
        conn.execute("CREATE TABLE orders.early (id bigserial PRIMARY KEY)")
        # And what an older release granted: CREATE on the database, taken back now.
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'inventory'").fetchone():
            conn.execute("CREATE ROLE inventory LOGIN")  # roles outlive the test's database
        conn.execute(f'GRANT CONNECT, CREATE ON DATABASE "{database}" TO inventory')
    apply_chart_roles(helm, postgres_server, database, tmp_path)
    apply_chart_roles(helm, postgres_server, database, tmp_path)  # every start runs it again

    await migrate_as(postgres_server, database, "inventory", inventory.MIGRATIONS)
    await migrate_as(postgres_server, database, "orders", orders.MIGRATIONS)
    orders_role = role_settings(postgres_server, database, "orders").db_conninfo
    with psycopg.connect(orders_role, autocommit=True) as conn:
        conn.execute("INSERT INTO orders.early DEFAULT VALUES")
        assert conn.execute("SELECT count(*) FROM orders.orders").fetchone() == (0,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM inventory.products")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.planted (id int)")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA planted")
    inventory_role = role_settings(postgres_server, database, "inventory").db_conninfo
    with (
        psycopg.connect(inventory_role, autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("CREATE SCHEMA planted")
