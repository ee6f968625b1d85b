"""Opaque refresh tokens: generation, hashing and the rotation verdict."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.auth.refresh import (
    RefreshVerdict,
    StoredRefreshToken,
    hash_refresh_token,
    judge_refresh_token,
    new_refresh_token,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
EARLIER = NOW - timedelta(seconds=1)


def test_tokens_are_unique_and_url_safe() -> None:
    tokens = {new_refresh_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", token) for token in tokens)


def test_the_hash_is_sha256_of_the_token() -> None:
    token = new_refresh_token()
    assert hash_refresh_token(token) == hashlib.sha256(token.encode()).digest()
    assert hash_refresh_token(token) != hash_refresh_token(new_refresh_token())


@pytest.mark.parametrize(
    ("token", "verdict"),
    [
        (StoredRefreshToken(LATER, None, None), RefreshVerdict.ROTATE),
        (StoredRefreshToken(LATER, EARLIER, None), RefreshVerdict.REUSED),
        (StoredRefreshToken(LATER, EARLIER, EARLIER), RefreshVerdict.REUSED),
        (StoredRefreshToken(EARLIER, EARLIER, None), RefreshVerdict.REUSED),
        (StoredRefreshToken(LATER, None, EARLIER), RefreshVerdict.REVOKED),
        (StoredRefreshToken(EARLIER, None, None), RefreshVerdict.EXPIRED),
        (StoredRefreshToken(NOW, None, None), RefreshVerdict.EXPIRED),
    ],
)
def test_verdict(token: StoredRefreshToken, verdict: RefreshVerdict) -> None:
    assert judge_refresh_token(token, NOW) is verdict
