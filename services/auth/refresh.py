"""Opaque refresh tokens: random strings handed out once, stored only as their SHA-256.

A leaked database therefore holds nothing that can be presented. SHA-256 without a salt is
enough here (unlike for passwords) because the tokens carry 256 bits of randomness.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

REFRESH_TOKEN_BYTES = 32


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class RefreshVerdict(StrEnum):
    """What presenting a stored refresh token amounts to."""

    ROTATE = "rotated"
    REUSED = "reused"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StoredRefreshToken:
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


def judge_refresh_token(token: StoredRefreshToken, now: datetime) -> RefreshVerdict:
    """Decide what to do with a presented token; reuse wins, so a thief cannot hide behind it.

    A token that was already rotated and is shown again means two parties hold the family: the
    legitimate client and whoever copied it. We cannot tell which is which, so the caller
    revokes the whole family.
    """
    if token.used_at is not None:
        return RefreshVerdict.REUSED
    if token.revoked_at is not None:
        return RefreshVerdict.REVOKED
    if token.expires_at <= now:
        return RefreshVerdict.EXPIRED
    return RefreshVerdict.ROTATE
