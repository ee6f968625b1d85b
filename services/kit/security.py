"""FastAPI dependencies that authenticate the caller from its bearer token.

Every service verifies the JWT itself: the gateway checks it too, but a service never trusts an
identity header, so a request sent straight to a service with a forged header gets 401. A valid
signature is not enough: the token must not have been revoked since (a demotion, a logout, a
deactivated account; see `services.kit.tokens.Revocations`), so the role a service acts on is
the one auth's database holds, give or take TOKEN_CHECK_CACHE_SECONDS.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.datastructures import State

from services.kit.errors import Forbidden
from services.kit.tokens import Principal, Revocations, VerifiedTokens, bearer_token


async def authenticate(state: State, authorization: str | None) -> Principal:
    """The principal of an `Authorization` header value, if its token is valid and current.

    `state` is the app's state, holding the `verified_tokens` and `revocations` its lifespan
    opened.
    """
    tokens: VerifiedTokens = state.verified_tokens
    principal = tokens.verify(bearer_token(authorization))
    revocations: Revocations = state.revocations
    await revocations.check(principal)
    return principal


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of a protected endpoint (async, so FastAPI runs it without a thread hop)."""
    return await authenticate(request.app.state, authorization)


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller of an admin-only endpoint."""
    if not principal.is_admin:
        raise Forbidden("This action needs the ADMIN role.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
