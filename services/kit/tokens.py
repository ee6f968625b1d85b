"""JWT access tokens: issued by auth, verified by the gateway and by every service.

EdDSA (Ed25519) only: auth alone signs, with its private key; every other service holds only the
public keys (kit/keys.py), so a compromised service cannot mint a token. A token names its key in
the `kid` header and is verified with that key alone; a token without a kid or with one no
configured key has is refused, and the algorithm list is fixed on verify, so `alg=none`, HS256
(with the public key as the HMAC secret: algorithm confusion) or any other switch is refused.
Tokens carry issuer, subject, expiry and a `typ` claim so a token of another kind is refused too.

A signature only proves what auth believed when it signed. So that a demotion, a logout, a
revoked refresh family or a deactivated account takes effect at once rather than when the token
expires, every token also carries its account's token version (`ver`) and its refresh family
(`sid`), and auth writes revocation markers to Redis (`Revocations` reads them):

- `auth:revoked:user:<user id>` = the lowest version still valid: auth bumps the account's
  version in its database whenever the role or the active flag changes, and every token
  signed with a lower one is refused;
- `auth:revoked:family:<family id>`: the family was logged out or revoked (reuse detected), and
  every token of that login is refused.

A marker lives as long as a token may (`ACCESS_TOKEN_TTL_SECONDS` plus a minute of clock
skew): every token it refuses has expired by the time it goes, so Redis holds only the changes
of the last quarter of an hour. Auth also announces each change on `SESSION_EVENTS_CHANNEL`,
so the gateway can end the live sockets it concerns (services/gateway/live.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.kit.errors import Unauthorized
from services.kit.keys import ALGORITHM, SigningKey
from services.kit.settings import ServiceSettings

Role = Literal["USER", "ADMIN"]
SESSION_EVENTS_CHANNEL = "realtimeorder-sessions"
"""Redis pub/sub channel where auth announces revocations as JSON: `{"userId", "minVersion"}`
for an account whose tokens below a version are revoked, `{"userId", "familyId"}` for a
revoked refresh family."""
MARKER_SKEW_SECONDS = 60
_MAX_CACHED_MARKERS = 50_000

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    `version` and `session_id` are the token's account version and refresh family, checked
    against auth's revocation markers; `expires_at` is when the token expires (None for a
    principal that was not read from a token).
    """

    user_id: str
    email: str
    role: Role
    version: int = 0
    session_id: str | None = None
    expires_at: datetime | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


def issue_access_token(
    settings: ServiceSettings,
    key: SigningKey,
    principal: Principal,
    *,
    now: datetime | None = None,
) -> str:
    """A short-lived access token for `principal`, signed with auth's `key`."""
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
        "ver": principal.version,
    }
    if principal.session_id is not None:
        claims["sid"] = principal.session_id
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify_access_token(settings: ServiceSettings, token: str) -> Principal:
    """The principal of a valid access token; `Unauthorized` for anything else."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = settings.verifying_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized("The access token is not signed by a known key.")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is not valid.") from exc
    role = claims.get("role")
    version = claims.get("ver", 0)
    session_id = claims.get("sid")
    if (
        claims.get("typ") != "access"
        or role not in ("USER", "ADMIN")
        or not isinstance(version, int)
        or isinstance(version, bool)
        or not (session_id is None or isinstance(session_id, str))
    ):
        raise Unauthorized("The access token is not valid.")
    return Principal(
        user_id=str(claims["sub"]),
        email=str(claims.get("email", "")),
        role=role,
        version=version,
        session_id=session_id,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


class VerifiedTokens:
    """Access tokens this process has verified, each with its principal, until it expires.

    Checking an Ed25519 signature and the claims costs about half a millisecond, and a client
    sends the same token with every request for the token's lifetime, so a process verifies
    each token once rather than on every request. What cannot change while a token lives is
    cached: its signature, claims and expiry (an entry met after it has expired is dropped and
    the token verified again, which refuses it). Revocation is not: `Revocations.check` still
    runs on every request. A token that fails is never kept. At most `max_entries` are held,
    the least recently used leave first.
    """

    def __init__(self, settings: ServiceSettings, max_entries: int = 10_000) -> None:
        self.settings = settings
        self.max_entries = max_entries
        self._principals: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The principal of a valid access token; `Unauthorized` for anything else."""
        principal = self._principals.get(token)
        if principal is not None:
            if principal.expires_at is not None and principal.expires_at > datetime.now(UTC):
                self._principals.move_to_end(token)
                return principal
            del self._principals[token]
        principal = verify_access_token(self.settings, token)
        self._principals[token] = principal
        if len(self._principals) > self.max_entries:
            self._principals.popitem(last=False)
        return principal

    def __len__(self) -> int:
        return len(self._principals)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header value."""
    if not authorization:
        raise Unauthorized("An access token is required.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def user_marker_key(user_id: str) -> str:
    """The lowest token version still valid for an account (absent: any)."""
    return f"auth:revoked:user:{user_id}"


def family_marker_key(family_id: str) -> str:
    """Present while a revoked refresh family's access tokens may still be unexpired."""
    return f"auth:revoked:family:{family_id}"


def marker_ttl_seconds(settings: ServiceSettings) -> int:
    """How long a revocation marker must live: until every token it refuses has expired."""
    return settings.access_token_ttl_seconds + MARKER_SKEW_SECONDS


def _marker_keys(principal: Principal) -> list[str]:
    keys = [user_marker_key(principal.user_id)]
    if principal.session_id is not None:
        keys.append(family_marker_key(principal.session_id))
    return keys


def _is_revoked(principal: Principal, markers: dict[str, str | None]) -> bool:
    if principal.session_id is not None and markers[family_marker_key(principal.session_id)]:
        return True
    min_version = markers[user_marker_key(principal.user_id)]
    if min_version is None or not min_version.isdigit():
        return False
    return principal.version < int(min_version)


class Revocations:
    """Auth's revocation markers as this process sees them: read from Redis, cached briefly.

    A marker read is kept `cache_seconds` (TOKEN_CHECK_CACHE_SECONDS), so an active caller
    costs one Redis round trip a second per process, not one per request; a revocation takes
    effect within that time.

    When Redis does not answer within `timeout_seconds` (TOKEN_CHECK_TIMEOUT_SECONDS), the check
    fails open: it uses the last markers it read (however old) and otherwise lets the token
    pass, and it leaves Redis alone for `cache_seconds` before trying again, so an outage costs
    a request at most one short wait. Failing closed would make Redis, today a cache and a
    push channel that orders and inventory work without, a hard dependency of every signed-in
    request. The exposure is bounded and small: a token revoked before the outage that this
    process had not yet checked works until it expires (as every token did before markers
    existed), and no revocation is lost during the outage, because auth refuses (503) a role
    change, deactivation or logout whose marker it cannot write.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        cache_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._cache_seconds = cache_seconds
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._markers: dict[str, tuple[str | None, float]] = {}
        self._redis_down_until = 0.0

    async def check(self, principal: Principal) -> None:
        """`Unauthorized` when auth has revoked `principal`'s token."""
        if (await self.revoked([principal]))[0]:
            raise Unauthorized("The access token has been revoked.")

    async def revoked(self, principals: list[Principal], *, fresh: bool = False) -> list[bool]:
        """For each principal, whether its token is revoked; `fresh` skips the cache."""
        keys = {key for principal in principals for key in _marker_keys(principal)}
        markers = await self._read(keys, fresh=fresh)
        return [_is_revoked(principal, markers) for principal in principals]

    def remember(self, key: str, value: str) -> None:
        """Take a marker announced on the events channel without waiting for the cache."""
        self._store(key, value, self._clock())

    async def _read(self, keys: Iterable[str], *, fresh: bool) -> dict[str, str | None]:
        keys = list(keys)
        now = self._clock()
        wanted = [key for key in keys if fresh or self._markers.get(key, (None, -1.0))[1] <= now]
        if wanted and now >= self._redis_down_until:
            try:
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    async with asyncio.timeout(self._timeout_seconds):
                        values = await self._redis.mget(chunk)
                    for key, value in zip(chunk, values, strict=True):
                        text = value.decode() if isinstance(value, bytes) else value
                        self._store(key, text, now)
            except (RedisError, OSError, TimeoutError) as exc:
                self._redis_down_until = now + self._cache_seconds
                log.warning(
                    "revocation markers unreadable; using the last ones read",
                    extra={"error": repr(exc)},
                )
        return {key: self._markers.get(key, (None, 0.0))[0] for key in keys}

    def _store(self, key: str, value: str | None, now: float) -> None:
        if len(self._markers) >= _MAX_CACHED_MARKERS and key not in self._markers:
            self._markers = {k: v for k, v in self._markers.items() if v[1] > now}
            if len(self._markers) >= _MAX_CACHED_MARKERS:
                self._markers.clear()
        self._markers[key] = (value, now + self._cache_seconds)
