from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.kit import tokens
from services.kit.errors import Unauthorized
from services.kit.keys import SigningKey, generate_pem_pair
from services.kit.settings import ServiceSettings
from services.kit.tokens import (
    Principal,
    VerifiedTokens,
    bearer_token,
    issue_access_token,
    verify_access_token,
)
from tests.signing import PUBLIC_KEY_PEM, SIGNING_KEY, sign, token_env

SETTINGS = ServiceSettings(APP_ENV="test", **token_env())
ALICE = Principal(user_id="u-1", email="alice@example.com", role="USER")


def _b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": "u-1", "iss": "realtimeorder", "typ": "access"}
    return claims | {"role": "ADMIN", "iat": now, "exp": now + timedelta(minutes=5)} | extra


def test_round_trip() -> None:
    assert verify_access_token(SETTINGS, sign(SETTINGS, ALICE)) == ALICE


def test_a_token_is_eddsa_and_names_its_key() -> None:
    header = jwt.get_unverified_header(sign(SETTINGS, ALICE))
    assert header["alg"] == "EdDSA"
    assert header["kid"] == SIGNING_KEY.kid


def test_expired_token_is_refused() -> None:
    token = sign(SETTINGS, ALICE, now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized, match="expired"):
        verify_access_token(SETTINGS, token)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = sign(SETTINGS, ALICE).split(".")
    forged = _b64({"sub": "u-1", "role": "ADMIN", "iss": "realtimeorder", "typ": "access"})
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, f"{header}.{forged}.{signature}")


def test_alg_none_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = _claims(iat=now, exp=now + 600)
    header = {"alg": "none", "typ": "JWT", "kid": SIGNING_KEY.kid}
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, f"{_b64(header)}.{_b64(claims)}.")


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = SigningKey.from_pem(generate_pem_pair()[0])
    with pytest.raises(Unauthorized, match="known key"):
        verify_access_token(SETTINGS, issue_access_token(SETTINGS, other, ALICE))


def test_another_key_under_the_known_kid_is_refused() -> None:
    other = SigningKey.from_pem(generate_pem_pair()[0])
    impostor = SigningKey(other.private_key, SIGNING_KEY.kid)
    with pytest.raises(Unauthorized, match="not valid"):
        verify_access_token(SETTINGS, issue_access_token(SETTINGS, impostor, ALICE))


def test_hs256_with_the_public_key_as_secret_is_refused() -> None:
    """Algorithm confusion: the public key is no secret, so an HMAC made with it proves nothing."""
    token = _hs256(_claims(), PUBLIC_KEY_PEM.encode(), kid=SIGNING_KEY.kid)
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, token)


def test_a_token_without_kid_is_refused() -> None:
    token = jwt.encode(_claims(), SIGNING_KEY.private_key, algorithm="EdDSA")
    with pytest.raises(Unauthorized, match="known key"):
        verify_access_token(SETTINGS, token)


def test_token_of_another_type_is_refused() -> None:
    token = jwt.encode(
        _claims(typ="refresh"),
        SIGNING_KEY.private_key,
        algorithm="EdDSA",
        headers={"kid": SIGNING_KEY.kid},
    )
    with pytest.raises(Unauthorized):
        verify_access_token(SETTINGS, token)


def test_every_listed_key_verifies_for_a_rotation() -> None:
    old_private, old_public = generate_pem_pair()
    both = ServiceSettings(APP_ENV="test", JWT_PUBLIC_KEY=old_public + PUBLIC_KEY_PEM)
    old = SigningKey.from_pem(old_private)
    assert verify_access_token(both, issue_access_token(both, old, ALICE)) == ALICE
    assert verify_access_token(both, sign(both, ALICE)) == ALICE


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "token"])
def test_bearer_header_must_be_well_formed(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_header_yields_token() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"


def _hs256(claims: dict[str, object], secret: bytes, *, kid: str) -> str:
    """An HS256 token made by hand: PyJWT itself refuses a PEM key as an HMAC secret."""

    def plain(value: object) -> object:
        return int(value.timestamp()) if isinstance(value, datetime) else value

    header = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    payload = _b64({name: plain(value) for name, value in claims.items()})
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


class CountingVerifier:
    """`verify_access_token`, counting the verifications a `VerifiedTokens` really makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        monkeypatch.setattr(tokens, "verify_access_token", self)

    def __call__(self, settings: ServiceSettings, token: str) -> Principal:
        self.calls += 1
        return verify_access_token(settings, token)


def test_a_valid_token_is_verified_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = CountingVerifier(monkeypatch)
    verified = VerifiedTokens(SETTINGS)
    token = sign(SETTINGS, ALICE)
    assert verified.verify(token) == ALICE
    assert verified.verify(token) == ALICE
    assert verifier.calls == 1


def test_a_refused_token_is_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = CountingVerifier(monkeypatch)
    verified = VerifiedTokens(SETTINGS)
    header, payload, _ = sign(SETTINGS, ALICE).split(".")
    forged = f"{header}.{payload}.{_b64({'not': 'a signature'})}"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verified.verify(forged)
    assert verifier.calls == 2
    assert len(verified) == 0


def test_a_kept_token_past_its_expiry_is_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = CountingVerifier(monkeypatch)
    verified = VerifiedTokens(SETTINGS)
    expired = sign(SETTINGS, ALICE, now=datetime.now(UTC) - timedelta(hours=1))
    # As if it had been verified while it was still valid.
    verified._principals[expired] = replace(ALICE, expires_at=datetime.now(UTC) - timedelta(1))
    with pytest.raises(Unauthorized, match="expired"):
        verified.verify(expired)
    assert verifier.calls == 1
    assert len(verified) == 0


def test_the_least_recently_used_token_leaves_first(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = CountingVerifier(monkeypatch)
    verified = VerifiedTokens(SETTINGS, max_entries=2)
    first, second, third = (sign(SETTINGS, replace(ALICE, user_id=f"u-{n}")) for n in range(3))
    verified.verify(first)
    verified.verify(second)
    verified.verify(first)  # first is now the most recently used
    verified.verify(third)  # so second leaves
    assert len(verified) == 2
    assert verifier.calls == 3
    verified.verify(first)
    assert verifier.calls == 3
    verified.verify(second)
    assert verifier.calls == 4
