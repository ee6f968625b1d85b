"""The auth service's domain errors; each carries its HTTP status (see services.kit.errors)."""

from __future__ import annotations

from services.kit.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized


class InvalidCredentials(Unauthorized):
    """Wrong email or wrong password: deliberately the same answer for both."""

    def __init__(self) -> None:
        super().__init__("Invalid email or password.")


class InvalidRefreshToken(Unauthorized):
    """Unknown, expired, revoked or reused refresh token: one answer for all of them."""

    def __init__(self) -> None:
        super().__init__("The refresh token is not valid.")


class AccountGone(Unauthorized):
    """A valid access token whose account has been deleted since."""

    def __init__(self) -> None:
        super().__init__("The account of this token no longer exists.")


class EmailTaken(Conflict):
    code = "email-taken"

    def __init__(self) -> None:
        super().__init__("An account with this email already exists.")


class UserNotFound(NotFound):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"There is no user {user_id}.")


class LastAdmin(Conflict):
    code = "last-admin"

    def __init__(self) -> None:
        super().__init__(
            "The last active admin cannot be demoted or deactivated; promote another user first."
        )


class NotAnAdmin(Forbidden):
    """The token says ADMIN but the account has been demoted or deleted since it was issued."""

    def __init__(self) -> None:
        super().__init__("This action needs the ADMIN role.")


class RateLimiterUnavailable(DomainError):
    """Redis is down: logins and registrations are refused rather than let through unlimited."""

    status = 503
    code = "rate-limiter-unavailable"

    def __init__(self) -> None:
        super().__init__("Sign-in and registration are unavailable; try again shortly.")


class AccountDisabled(Forbidden):
    """The account has been deactivated by an admin."""

    code = "account-disabled"

    def __init__(self) -> None:
        super().__init__("This account has been deactivated.")


class SessionStoreUnavailable(DomainError):
    """Redis refused a revocation marker: the change is not made, since it could not be
    enforced everywhere."""

    status = 503
    code = "session-store-unavailable"

    def __init__(self) -> None:
        super().__init__("Account and session changes are unavailable; try again shortly.")
