"""The auth service's rules: who may register, log in, refresh, and change roles.

Endpoints call these and only translate HTTP; repository.py holds the SQL. Password work runs
with no database connection held, so slow argon2 never pins a pooled connection.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter, ValidationError

from services.auth import repository
from services.auth.errors import (
    AccountDisabled,
    AccountGone,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    LastAdmin,
    NotAnAdmin,
    SessionStoreUnavailable,
    UserNotFound,
)
from services.auth.metrics import LOGINS, REFRESHES, REGISTRATIONS
from services.auth.passwords import Passwords, password_policy_violation
from services.auth.ratelimit import LoginLimiter, RegistrationLimiter
from services.auth.refresh import (
    RefreshVerdict,
    StoredRefreshToken,
    hash_refresh_token,
    judge_refresh_token,
    new_refresh_token,
)
from services.auth.repository import User
from services.auth.schemas import Email
from services.auth.sessions import Revocation, SessionMarkers
from services.auth.settings import Settings
from services.kit.db import DictConnection, Pool
from services.kit.errors import RateLimited
from services.kit.tokens import Principal, Role, issue_access_token

ADMIN_DEFAULT_NAME = "Administrator"

log = logging.getLogger(__name__)
_email_adapter: TypeAdapter[str] = TypeAdapter(Email)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[User]
    total: int


def utcnow() -> datetime:
    return datetime.now(UTC)


class AuthService:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        passwords: Passwords,
        limiter: LoginLimiter,
        registrations: RegistrationLimiter,
        markers: SessionMarkers,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._passwords = passwords
        self._limiter = limiter
        self._registrations = registrations
        self._markers = markers

    async def register(self, *, email: str, password: str, name: str, address: str) -> User:
        """A new USER account; `EmailTaken` when the email has one already.

        The rate limit and the duplicate check come before the argon2 hash, the one expensive
        step, so neither a flood nor a taken email costs a hash. The insert still refuses a
        duplicate that registered in between.
        """
        try:
            await self._registrations.count_attempt(address)
        except RateLimited:
            REGISTRATIONS.labels("rate_limited").inc()
            log.warning("registration rate limited", extra={"client_address": address})
            raise
        async with self._pool.connection() as conn:
            taken = await repository.find_user_by_email(conn, email) is not None
        user = None
        if not taken:
            password_hash = await self._passwords.hash(password)
            async with self._pool.connection() as conn:
                user = await repository.insert_user(
                    conn, email=email, name=name, password_hash=password_hash
                )
        if user is None:
            REGISTRATIONS.labels("duplicate").inc()
            raise EmailTaken()
        REGISTRATIONS.labels("created").inc()
        log.info("user registered", extra={"user_id": str(user.id)})
        return user

    async def login(self, *, email: str, password: str, address: str) -> TokenGrant:
        """Tokens for a right email and password, within the rate limits.

        The answer for an unknown email and for a wrong password is the same error after about
        the same time (a throwaway verify), so the endpoint cannot be used to find accounts.
        """
        try:
            await self._limiter.count_attempt(address)
            await self._limiter.check_failures(email, address)
        except RateLimited:
            LOGINS.labels("rate_limited").inc()
            log.warning("login rate limited", extra={"client_address": address})
            raise

        async with self._pool.connection() as conn:
            user = await repository.find_user_by_email(conn, email)
        if user is None:
            await self._passwords.verify_nothing(password)
        elif await self._passwords.verify(user.password_hash, password):
            return await self._succeed_login(user, email=email, password=password, address=address)

        await self._limiter.count_failure(email, address)
        LOGINS.labels("invalid").inc()
        raise InvalidCredentials()

    async def _succeed_login(
        self, user: User, *, email: str, password: str, address: str
    ) -> TokenGrant:
        await self._limiter.clear_failures(email, address)
        if not user.active:
            LOGINS.labels("disabled").inc()
            raise AccountDisabled()
        new_hash = None
        if self._passwords.needs_rehash(user.password_hash):
            new_hash = await self._passwords.hash(password)
        now = utcnow()
        async with self._pool.connection() as conn:
            if new_hash is not None:
                await repository.update_password_hash(conn, user.id, new_hash)
                log.info(
                    "password rehashed with current parameters", extra={"user_id": str(user.id)}
                )
            grant = await self._grant(conn, user, family_id=uuid.uuid4(), now=now)
        LOGINS.labels("success").inc()
        return grant

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """A new token pair for a current refresh token, which is used up by it.

        Presenting a token that was already rotated is reuse: the whole family is revoked, so
        the newest token (maybe in a thief's hands, maybe in the user's) stops working too, and
        so do the family's access tokens. A deactivated account's tokens are not refreshed.
        """
        now = utcnow()
        verdict: RefreshVerdict | None = None
        grant: TokenGrant | None = None
        revoked: Revocation | None = None
        async with self._pool.connection() as conn, conn.transaction():
            stored = await repository.find_refresh_token_for_update(
                conn, hash_refresh_token(refresh_token)
            )
            if stored is not None:
                verdict = judge_refresh_token(
                    StoredRefreshToken(stored.expires_at, stored.used_at, stored.revoked_at), now
                )
                if verdict is RefreshVerdict.ROTATE:
                    user = await repository.find_user(conn, stored.user_id)
                    # The foreign key cascades deletes, so a live token always has its user.
                    assert user is not None
                    if user.active:
                        await repository.mark_refresh_token_used(conn, stored.id, now)
                        grant = await self._grant(conn, user, family_id=stored.family_id, now=now)
                elif verdict is RefreshVerdict.REUSED:
                    await repository.revoke_family(conn, stored.family_id, now)
                    revoked = Revocation(stored.user_id, family_id=stored.family_id)
                    log.warning(
                        "refresh token reused; family revoked",
                        extra={"user_id": str(stored.user_id), "family_id": str(stored.family_id)},
                    )
        if revoked is not None:
            # The refresh tokens are revoked whatever Redis does; the access tokens follow
            # when it takes the marker.
            try:
                await self._markers.write(revoked)
            except SessionStoreUnavailable:
                log.error(
                    "reused family's access tokens not revoked: Redis refused the marker",
                    extra={"user_id": str(revoked.user_id), "family_id": str(revoked.family_id)},
                )
            else:
                await self._markers.announce(revoked)
        REFRESHES.labels(verdict.value if verdict else "unknown").inc()
        if grant is None:
            raise InvalidRefreshToken()
        return grant

    async def logout(self, refresh_token: str) -> None:
        """Revoke the family of `refresh_token` and its access tokens; unknown or revoked
        tokens are fine too.

        The marker is written after the refresh tokens are revoked, so a logout answered 503
        (Redis refused the marker) has still ended the refresh tokens, and repeating it writes
        the marker.
        """
        async with self._pool.connection() as conn:
            family = await repository.revoke_family_of(
                conn, hash_refresh_token(refresh_token), utcnow()
            )
        if family is not None:
            revocation = Revocation(family.user_id, family_id=family.family_id)
            await self._markers.write(revocation)
            await self._markers.announce(revocation)

    async def whoami(self, principal: Principal) -> User:
        """The caller's account as it is now (a deleted account is refused, a new role seen)."""
        async with self._pool.connection() as conn:
            user = await repository.find_user(conn, _user_id(principal))
        if user is None:
            raise AccountGone()
        if not user.active:
            raise AccountDisabled()
        return user

    async def list_users(self, actor: Principal, *, limit: int, offset: int) -> UserPage:
        async with self._pool.connection() as conn:
            await _require_admin(conn, actor)
            users = await repository.list_users(conn, limit=limit, offset=offset)
            total = await repository.count_users(conn)
        return UserPage(users=users, total=total)

    async def change_role(self, actor: Principal, user_id: uuid.UUID, role: Role) -> User:
        """Give `user_id` the `role`; the last active admin cannot be demoted (`LastAdmin`).

        A change revokes the account's access tokens everywhere at once (their claims say the
        old role); the account's next refresh gets a token with the new one.
        """
        async with self._pool.connection() as conn, conn.transaction():
            admins = await repository.lock_admins(conn)
            await _require_admin(conn, actor)
            target = await repository.find_user(conn, user_id, lock=True)
            if target is None:
                raise UserNotFound(str(user_id))
            if target.is_admin and role != "ADMIN" and admins == [target.id]:
                raise LastAdmin()
            updated = await repository.set_role(conn, user_id, role)
            assert updated is not None
            revocation = await self._revoke_older_tokens(target, updated)
        if revocation is not None:
            await self._markers.announce(revocation)
            log.info(
                "role changed",
                extra={"user_id": str(user_id), "role": role, "by": actor.user_id},
            )
        return updated

    async def set_active(self, actor: Principal, user_id: uuid.UUID, active: bool) -> User:
        """Activate or deactivate `user_id`; the last active admin stays (`LastAdmin`).

        Deactivation revokes the account's refresh tokens and, everywhere at once, its access
        tokens; login and refresh refuse the account until it is activated again.
        """
        async with self._pool.connection() as conn, conn.transaction():
            admins = await repository.lock_admins(conn)
            await _require_admin(conn, actor)
            target = await repository.find_user(conn, user_id, lock=True)
            if target is None:
                raise UserNotFound(str(user_id))
            if not active and admins == [target.id]:
                raise LastAdmin()
            updated = await repository.set_active(conn, user_id, active)
            assert updated is not None
            if not active:
                await repository.revoke_user_refresh_tokens(conn, user_id, utcnow())
            revocation = await self._revoke_older_tokens(target, updated)
        if revocation is not None:
            await self._markers.announce(revocation)
            log.info(
                "account activated" if active else "account deactivated",
                extra={"user_id": str(user_id), "by": actor.user_id},
            )
        return updated

    async def _revoke_older_tokens(self, before: User, after: User) -> Revocation | None:
        """Within the change's transaction: refuse tokens of `before`'s version from now on.

        Written before the commit, so a change that Redis cannot make effective is rolled back
        (503) rather than reported done while old tokens keep working.
        """
        if after.token_version == before.token_version:
            return None
        revocation = Revocation(after.id, min_version=after.token_version)
        await self._markers.write(revocation)
        return revocation

    async def prune_refresh_tokens(self, now: datetime | None = None) -> int:
        """Delete tokens expired for a whole TTL; by then reuse detection gains nothing."""
        before = (now or utcnow()) - timedelta(seconds=self._settings.refresh_token_ttl_seconds)
        async with self._pool.connection() as conn:
            return await repository.delete_refresh_tokens_expired_before(conn, before)

    async def _grant(
        self, conn: DictConnection, user: User, *, family_id: uuid.UUID, now: datetime
    ) -> TokenGrant:
        refresh_token = new_refresh_token()
        await repository.insert_refresh_token(
            conn,
            token_hash=hash_refresh_token(refresh_token),
            family_id=family_id,
            user_id=user.id,
            expires_at=now + timedelta(seconds=self._settings.refresh_token_ttl_seconds),
        )
        principal = Principal(
            user_id=str(user.id),
            email=user.email,
            role=user.role,
            version=user.token_version,
            session_id=str(family_id),
        )
        return TokenGrant(
            access_token=issue_access_token(
                self._settings, self._settings.signing_key, principal, now=now
            ),
            refresh_token=refresh_token,
            expires_in=self._settings.access_token_ttl_seconds,
            user=user,
        )


async def ensure_admin(pool: Pool, passwords: Passwords, email: str, password: str) -> User:
    """Create `email` as an ADMIN, or promote its existing account; harmless to repeat.

    Only the explicit `realtimeorder create-admin` command calls this. An existing account keeps
    its password: this grants a role, it does not reset credentials.
    """
    email = _checked_admin_credentials(email, password)
    async with pool.connection() as conn:
        existing = await repository.find_user_by_email(conn, email)
        if existing is not None:
            if existing.is_admin:
                return existing
            promoted = await repository.set_role(conn, existing.id, "ADMIN")
            if promoted is not None:
                log.info("existing account promoted to admin", extra={"user_id": str(promoted.id)})
                return promoted
    password_hash = await passwords.hash(password)
    async with pool.connection() as conn:
        admin = await repository.insert_admin_or_promote(
            conn, email=email, name=ADMIN_DEFAULT_NAME, password_hash=password_hash
        )
    log.info("admin account created", extra={"user_id": str(admin.id)})
    return admin


async def bootstrap_admin(
    pool: Pool, passwords: Passwords, email: str, password: str
) -> User | None:
    """At start (ADMIN_EMAIL, ADMIN_PASSWORD): create `email` as an ADMIN if nobody has it.

    It never promotes: anyone may register any email, so an account that exists and is not an
    admin may be a stranger's, who registered the address before the first start and would
    then hold an admin account with their own password. That is left as it is, with a warning;
    `realtimeorder create-admin` promotes it once an operator has checked whose it is.
    """
    email = _checked_admin_credentials(email, password)
    async with pool.connection() as conn:
        existing = await repository.find_user_by_email(conn, email)
    if existing is None:
        password_hash = await passwords.hash(password)
        async with pool.connection() as conn:
            admin = await repository.insert_user(
                conn,
                email=email,
                name=ADMIN_DEFAULT_NAME,
                password_hash=password_hash,
                role="ADMIN",
            )
            if admin is not None:
                log.info("admin account created", extra={"user_id": str(admin.id)})
                return admin
            existing = await repository.find_user_by_email(conn, email)
            assert existing is not None  # accounts are never deleted by the service
    if existing.is_admin:
        return existing
    log.warning(
        "ADMIN_EMAIL belongs to an existing account that is not an admin; it is not promoted "
        "(promote it with realtimeorder create-admin)",
        extra={"user_id": str(existing.id)},
    )
    return None


def _checked_admin_credentials(email: str, password: str) -> str:
    """The normalised admin email; ValueError for a bad email or a weak password."""
    try:
        email = _email_adapter.validate_python(email)
    except ValidationError as exc:
        raise ValueError(f"admin email {email!r} is not a valid email address") from exc
    if (violation := password_policy_violation(password)) is not None:
        raise ValueError(f"admin password rejected: {violation}")
    return email


async def _require_admin(conn: DictConnection, actor: Principal) -> None:
    """Refuse an admin token whose account has been demoted, deactivated or deleted since."""
    user = await repository.find_user(conn, _user_id(actor))
    if user is None or not user.is_admin or not user.active:
        raise NotAnAdmin()


def _user_id(principal: Principal) -> uuid.UUID:
    try:
        return uuid.UUID(principal.user_id)
    except ValueError as exc:
        raise AccountGone() from exc
