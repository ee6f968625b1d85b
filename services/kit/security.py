"""FastAPI dependencies that authenticate the caller from its bearer token.

Every service verifies the JWT itself: the gateway checks it too, but a service never trusts an
identity header, so a request sent straight to a service with a forged header gets 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from services.kit.errors import Forbidden
from services.kit.tokens import Principal, bearer_token, verify_access_token


async def current_principal(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller of a protected endpoint (async, so FastAPI runs it without a thread hop)."""
    return verify_access_token(request.app.state.settings, bearer_token(authorization))


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller of an admin-only endpoint."""
    if not principal.is_admin:
        raise Forbidden("This action needs the ADMIN role.")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
