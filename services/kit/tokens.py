"""JWT access tokens: issued by auth, verified by the gateway and by every service.

HS256 only: the algorithm list is fixed on verify, so `alg=none` or an algorithm switch is
refused. Tokens carry issuer, subject, expiry and a `typ` claim so a token of another kind is
refused too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from services.kit.errors import Unauthorized
from services.kit.settings import ServiceSettings

ALGORITHM = "HS256"
Role = Literal["USER", "ADMIN"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    email: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


def issue_access_token(
    settings: ServiceSettings, principal: Principal, *, now: datetime | None = None
) -> str:
    """A signed, short-lived access token for `principal`."""
    issued = now or datetime.now(UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "sub": principal.user_id,
        "email": principal.email,
        "role": principal.role,
        "typ": "access",
        "iat": issued,
        "exp": issued + timedelta(seconds=settings.access_token_ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def verify_access_token(settings: ServiceSettings, token: str) -> Principal:
    """The principal of a valid access token; `Unauthorized` for anything else."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    role = claims.get("role")
    if claims.get("typ") != "access" or role not in ("USER", "ADMIN"):
        raise Unauthorized("The access token is not valid.")
    return Principal(user_id=str(claims["sub"]), email=str(claims.get("email", "")), role=role)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header value."""
    if not authorization:
        raise Unauthorized("An access token is required.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token.strip()
