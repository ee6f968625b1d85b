"""Revocation markers in Redis: how a change in auth's database reaches every token check.

Auth owns the truth (the account's role, active flag and token version, and the refresh
families in its database); every service and the gateway verify access tokens on their own,
so a change they must honour at once is written where they look: the markers of
`services.kit.tokens` (the contract, with how verifiers read them).

A marker is written inside the database transaction that makes the change, before it commits:
if Redis refuses it, the change is rolled back and answered 503 (`SessionStoreUnavailable`),
so a demotion the caller saw succeed is always enforced. The announcement on the events
channel, which lets the gateway end live sockets at once, goes out after the commit and may be
lost; the gateway then catches up when it resubscribes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.auth.errors import SessionStoreUnavailable
from services.auth.settings import Settings
from services.kit.tokens import (
    SESSION_EVENTS_CHANNEL,
    Revocations,
    family_marker_key,
    marker_ttl_seconds,
    user_marker_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation: an account's tokens below `min_version`, or one refresh family's."""

    user_id: uuid.UUID
    min_version: int | None = None
    family_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        if self.family_id is not None:
            return family_marker_key(str(self.family_id))
        return user_marker_key(str(self.user_id))

    @property
    def value(self) -> str:
        return "1" if self.family_id is not None else str(self.min_version)

    def event(self) -> bytes:
        body: dict[str, object] = {"userId": str(self.user_id)}
        if self.family_id is not None:
            body["familyId"] = str(self.family_id)
        else:
            body["minVersion"] = self.min_version
        return orjson.dumps(body)


class SessionMarkers:
    """Writes and announces revocations; `revocations` is this process's own reader."""

    def __init__(self, redis: Redis, settings: Settings, revocations: Revocations) -> None:
        self._redis = redis
        self._ttl = marker_ttl_seconds(settings)
        self._revocations = revocations

    async def write(self, revocation: Revocation) -> None:
        """Store the marker; `SessionStoreUnavailable` when Redis does not take it."""
        try:
            await self._redis.set(revocation.key, revocation.value, ex=self._ttl)
        except RedisError as exc:
            raise SessionStoreUnavailable() from exc
        self._revocations.remember(revocation.key, revocation.value)

    async def announce(self, revocation: Revocation) -> None:
        """Tell the gateways, after the change committed; a failure is logged, not raised."""
        try:
            await self._redis.publish(SESSION_EVENTS_CHANNEL, revocation.event())
        except RedisError as exc:
            log.warning(
                "revocation not announced; gateways catch up when they resubscribe",
                extra={"user_id": str(revocation.user_id), "error": repr(exc)},
            )
