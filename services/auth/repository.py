"""All SQL of the auth service. Tables live in the `auth` schema (the pool's search_path)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.kit.db import DictConnection
from services.kit.tokens import Role

SCHEMA = "auth"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    name: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime
    token_version: int
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    id: int
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


def _user(row: dict[str, Any] | None) -> User | None:
    return User(**row) if row is not None else None


async def insert_user(
    conn: DictConnection, *, email: str, name: str, password_hash: str, role: Role = "USER"
) -> User | None:
    """The new user, or None when the email is taken."""
    cursor = await conn.execute(
        """
        INSERT INTO users (email, name, password_hash, role)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT ((lower(email))) DO NOTHING
        RETURNING id, email, name, password_hash, role, created_at, updated_at,
                  token_version, active
        """,
        (email, name, password_hash, role),
    )
    return _user(await cursor.fetchone())


async def insert_admin_or_promote(
    conn: DictConnection, *, email: str, name: str, password_hash: str
) -> User:
    """Create `email` as an ADMIN, or make the existing account one (its password is kept)."""
    cursor = await conn.execute(
        """
        INSERT INTO users (email, name, password_hash, role)
        VALUES (%s, %s, %s, 'ADMIN')
        ON CONFLICT ((lower(email))) DO UPDATE
            SET role = 'ADMIN',
                updated_at = CASE WHEN users.role = 'ADMIN' THEN users.updated_at ELSE now() END,
                token_version = CASE WHEN users.role = 'ADMIN' THEN users.token_version
                                     ELSE users.token_version + 1 END
        RETURNING id, email, name, password_hash, role, created_at, updated_at,
                  token_version, active
        """,
        (email, name, password_hash),
    )
    user = _user(await cursor.fetchone())
    assert user is not None
    return user


async def find_user(conn: DictConnection, user_id: uuid.UUID, *, lock: bool = False) -> User | None:
    query = (
        """
        SELECT id, email, name, password_hash, role, created_at, updated_at,
               token_version, active
        FROM users WHERE id = %s FOR UPDATE
        """
        if lock
        else """
        SELECT id, email, name, password_hash, role, created_at, updated_at,
               token_version, active
        FROM users WHERE id = %s
        """
    )
    cursor = await conn.execute(query, (user_id,))
    return _user(await cursor.fetchone())


async def find_user_by_email(conn: DictConnection, email: str) -> User | None:
    cursor = await conn.execute(
        """
        SELECT id, email, name, password_hash, role, created_at, updated_at,
               token_version, active
        FROM users WHERE lower(email) = lower(%s)
        """,
        (email,),
    )
    return _user(await cursor.fetchone())


async def update_password_hash(
    conn: DictConnection, user_id: uuid.UUID, password_hash: str
) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
        (password_hash, user_id),
    )


async def list_users(conn: DictConnection, *, limit: int, offset: int) -> list[User]:
    cursor = await conn.execute(
        """
        SELECT id, email, name, password_hash, role, created_at, updated_at,
               token_version, active
        FROM users ORDER BY created_at, id LIMIT %s OFFSET %s
        """,
        (limit, offset),
    )
    return [User(**row) for row in await cursor.fetchall()]


async def count_users(conn: DictConnection) -> int:
    cursor = await conn.execute("SELECT count(*) AS n FROM users")
    row = await cursor.fetchone()
    assert row is not None
    return int(row["n"])


async def lock_admins(conn: DictConnection) -> list[uuid.UUID]:
    """The ids of all active admins, locked until the transaction ends.

    Locking them in id order makes concurrent role changes wait for each other, so two admins
    demoting each other at the same moment cannot leave the platform without one.
    """
    cursor = await conn.execute(
        "SELECT id FROM users WHERE role = 'ADMIN' AND active ORDER BY id FOR UPDATE"
    )
    return [row["id"] for row in await cursor.fetchall()]


async def set_role(conn: DictConnection, user_id: uuid.UUID, role: Role) -> User | None:
    cursor = await conn.execute(
        """
        UPDATE users
        SET role = %s,
            updated_at = CASE WHEN role = %s THEN updated_at ELSE now() END,
            token_version = CASE WHEN role = %s THEN token_version ELSE token_version + 1 END
        WHERE id = %s
        RETURNING id, email, name, password_hash, role, created_at, updated_at,
                  token_version, active
        """,
        (role, role, role, user_id),
    )
    return _user(await cursor.fetchone())


async def set_active(conn: DictConnection, user_id: uuid.UUID, active: bool) -> User | None:
    """Activate or deactivate an account; a change bumps its token version."""
    cursor = await conn.execute(
        """
        UPDATE users
        SET active = %s,
            updated_at = CASE WHEN active = %s THEN updated_at ELSE now() END,
            token_version = CASE WHEN active = %s THEN token_version ELSE token_version + 1 END
        WHERE id = %s
        RETURNING id, email, name, password_hash, role, created_at, updated_at,
                  token_version, active
        """,
        (active, active, active, user_id),
    )
    return _user(await cursor.fetchone())


async def insert_refresh_token(
    conn: DictConnection,
    *,
    token_hash: bytes,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
        VALUES (%s, %s, %s, %s)
        """,
        (token_hash, family_id, user_id, expires_at),
    )


async def find_refresh_token_for_update(
    conn: DictConnection, token_hash: bytes
) -> RefreshTokenRow | None:
    """The token with this hash, locked so two refreshes with it are judged one after another."""
    cursor = await conn.execute(
        """
        SELECT id, family_id, user_id, expires_at, used_at, revoked_at
        FROM refresh_tokens
        WHERE token_hash = %s
        FOR UPDATE
        """,
        (token_hash,),
    )
    row = await cursor.fetchone()
    return RefreshTokenRow(**row) if row is not None else None


async def mark_refresh_token_used(conn: DictConnection, token_id: int, now: datetime) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = %s WHERE id = %s", (now, token_id))


async def revoke_family(conn: DictConnection, family_id: uuid.UUID, now: datetime) -> int:
    cursor = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = %s WHERE family_id = %s AND revoked_at IS NULL",
        (now, family_id),
    )
    return cursor.rowcount


@dataclass(frozen=True, slots=True)
class Family:
    """A refresh token family: the tokens of one login."""

    family_id: uuid.UUID
    user_id: uuid.UUID


async def revoke_family_of(conn: DictConnection, token_hash: bytes, now: datetime) -> Family | None:
    """Revoke the family of the token with this hash; the family, or None when there is no such
    token."""
    cursor = await conn.execute(
        "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = %s", (token_hash,)
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    await revoke_family(conn, row["family_id"], now)
    return Family(**row)


async def revoke_user_refresh_tokens(
    conn: DictConnection, user_id: uuid.UUID, now: datetime
) -> int:
    cursor = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
        (now, user_id),
    )
    return cursor.rowcount


async def delete_refresh_tokens_expired_before(conn: DictConnection, before: datetime) -> int:
    cursor = await conn.execute("DELETE FROM refresh_tokens WHERE expires_at < %s", (before,))
    return cursor.rowcount
