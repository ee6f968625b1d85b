from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.kit.errors import Unauthorized
from services.kit.settings import ServiceSettings
from services.kit.tokens import Principal, bearer_token, issue_access_token, verify_access_token

SETTINGS = ServiceSettings(JWT_SECRET="k" * 40)
ALICE = Principal(user_id="u-1", email="alice@example.com", role="USER")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    assert verify_access_token(SETTINGS, issue_access_token(SETTINGS, ALICE)) == ALICE


def test_expired_token_is_refused() -> None:
    token = issue_access_token(SETTINGS, ALICE, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized, match="expired"):
        verify_access_token(SETTINGS, token)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = issue_access_token(SETTINGS, ALICE).split(".")
    forged = _b64({"sub": "u-1", "role": "ADMIN", "iss": "realtimeorder", "typ": "access"})
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, f"{header}.{forged}.{signature}")


def test_alg_none_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {"sub": "u-1", "role": "ADMIN", "iss": "realtimeorder"}
    claims["typ"] = "access"
    claims |= {"iat": now, "exp": now + 600, "email": "x@example.com"}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, token)


def test_other_secret_is_refused() -> None:
    other = ServiceSettings(JWT_SECRET="z" * 40)
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, issue_access_token(other, ALICE))


def test_token_of_another_type_is_refused() -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {
            "sub": "u-1",
            "iss": "realtimeorder",
            "typ": "refresh",
            "role": "USER",
            "iat": now,
            "exp": now + timedelta(minutes=5),
        },
        SETTINGS.jwt_secret,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, token)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "token"])
def test_bearer_header_must_be_well_formed(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_header_yields_token() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
