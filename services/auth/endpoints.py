"""HTTP routes of the auth service: they translate HTTP to service calls and back."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.auth.ratelimit import client_address
from services.auth.schemas import (
    ActiveChange,
    Identity,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    RoleChange,
    TokenPair,
    UserOut,
    UserPage,
)
from services.auth.service import AuthService, TokenGrant
from services.auth.settings import Settings
from services.kit.models import PageOffset
from services.kit.security import CurrentAdmin, CurrentUser

router = APIRouter(prefix="/auth", tags=["auth"])


async def _service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


Service = Annotated[AuthService, Depends(_service)]


def _token_pair(grant: TokenGrant) -> TokenPair:
    return TokenPair(
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
        expires_in=grant.expires_in,
        user=UserOut.model_validate(grant.user),
    )


async def _client_address(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return client_address(
        request.client.host if request.client else None,
        ",".join(request.headers.getlist("x-forwarded-for")) or None,
        settings.trusted_proxy_networks,
    )


ClientAddress = Annotated[str, Depends(_client_address)]


async def _no_store(response: Response) -> None:
    """Keep tokens out of every cache (RFC 6749 section 5.1); Pragma for HTTP/1.0 caches."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


# On every route whose answer carries tokens.
NO_STORE = [Depends(_no_store)]


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, address: ClientAddress, service: Service) -> UserOut:
    user = await service.register(
        email=body.email, password=body.password, name=body.name, address=address
    )
    return UserOut.model_validate(user)


@router.post("/login", dependencies=NO_STORE)
async def login(body: LoginRequest, address: ClientAddress, service: Service) -> TokenPair:
    grant = await service.login(email=body.email, password=body.password, address=address)
    return _token_pair(grant)


@router.post("/refresh", dependencies=NO_STORE)
async def refresh(body: RefreshRequest, service: Service) -> TokenPair:
    return _token_pair(await service.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, service: Service) -> Response:
    await service.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/verify")
async def verify(principal: CurrentUser, service: Service) -> Identity:
    return Identity(user=UserOut.model_validate(await service.whoami(principal)))


@router.get("/users")
async def list_users(
    admin: CurrentAdmin,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[PageOffset, Query()] = 0,
) -> UserPage:
    page = await service.list_users(admin, limit=limit, offset=offset)
    return UserPage(
        items=[UserOut.model_validate(u) for u in page.users],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.patch("/users/{user_id}/role")
async def change_role(
    user_id: uuid.UUID, body: RoleChange, admin: CurrentAdmin, service: Service
) -> UserOut:
    return UserOut.model_validate(await service.change_role(admin, user_id, body.role))


@router.patch("/users/{user_id}/active")
async def set_active(
    user_id: uuid.UUID, body: ActiveChange, admin: CurrentAdmin, service: Service
) -> UserOut:
    return UserOut.model_validate(await service.set_active(admin, user_id, body.active))
