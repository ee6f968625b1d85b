"""The token keys every service of a test platform shares: one Ed25519 pair per test run.

`token_env()` is merged into every service's settings: auth takes the private key, the others
ignore it (settings ignore unknown keys) and verify with the public key, as in a deployment.
Tests that mint tokens themselves sign with `SIGNING_KEY`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.kit.keys import SigningKey, generate_pem_pair
from services.kit.settings import ServiceSettings
from services.kit.tokens import Principal, issue_access_token

PRIVATE_KEY_PEM, PUBLIC_KEY_PEM = generate_pem_pair()
SIGNING_KEY = SigningKey.from_pem(PRIVATE_KEY_PEM)


def token_env() -> dict[str, Any]:
    """What each service's settings take to sign (auth) or verify (every service) tokens.

    Typed `Any` so that it spreads into a settings class's keyword arguments.
    """
    return {"JWT_PRIVATE_KEY": PRIVATE_KEY_PEM, "JWT_PUBLIC_KEY": PUBLIC_KEY_PEM}


def sign(settings: ServiceSettings, principal: Principal, *, now: datetime | None = None) -> str:
    """An access token for `principal` as auth would issue it, with `settings`' issuer and TTL."""
    return issue_access_token(settings, SIGNING_KEY, principal, now=now)
