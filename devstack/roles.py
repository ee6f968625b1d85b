"""One PostgreSQL role per service, owning only the service's schema.

Each service connects as its own role (`auth`, `orders`, `inventory`, `notifications`,
`analytics`), which owns its schema and everything in it and has no right on another's, so a
compromised service cannot read or change another's tables. The roles are not superusers and
cannot create roles, databases or schemas. `ensure_roles` is idempotent: it creates what is missing,
sets the passwords, and hands a schema (and the tables in it) that an earlier stack created as
the superuser over to its role. Migrations still run at each service's start, as its role.
The chart's bundled PostgreSQL runs the same statements (templates/postgresql/roles.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

SCHEMA_OWNERS = ("auth", "orders", "inventory", "notifications", "analytics")
"""The services with a schema of their own; the role, the schema and the service share a name."""

_TAKE_OVER_OBJECTS = """
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT c.oid::regclass AS name
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {schema}
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND pg_get_userbyid(c.relowner) <> {role}
          AND NOT EXISTS (  -- a serial's sequence follows its table
              SELECT 1 FROM pg_depend d
              WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
          )
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', item.name, {role});
    END LOOP;
END
$$
"""


def ensure_roles(conninfo: str, database: str, passwords: Mapping[str, str]) -> None:
    """Create or update the role of each service in `passwords` (connected as a superuser)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for role, password in passwords.items():
            ensure_role(conn, database, role, password)


def ensure_role(conn: psycopg.Connection, database: str, role: str, password: str) -> None:
    name = sql.Identifier(role)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER" if exists else "CREATE")
    conn.execute(
        sql.SQL(
            "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {}"
        ).format(verb, name, sql.Literal(password))
    )
    # No CREATE on the database, so no schema but its own (the kit creates a schema only when
    # it is missing); the revoke takes back the grant an older stack gave.
    database_name = sql.Identifier(database)
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database_name, name))
    conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(database_name, name))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {0} AUTHORIZATION {0}").format(name))
    conn.execute(sql.SQL("ALTER SCHEMA {0} OWNER TO {0}").format(name))
    conn.execute(
        sql.SQL(_TAKE_OVER_OBJECTS).format(schema=sql.Literal(role), role=sql.Literal(role))
    )
    # PostgreSQL before 15 lets every role create objects in `public`; nothing should live there.
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
