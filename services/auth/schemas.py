"""Request and response bodies; JSON is camelCase, as the seed's web apps expect."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from services.auth.passwords import PASSWORD_MAX_LENGTH, password_policy_violation
from services.kit.models import CamelModel, NoControls, PageOffset, RequestModel
from services.kit.tokens import Role


def _lowercase(email: str) -> str:
    return email.lower()


def _meets_policy(password: str) -> str:
    if (violation := password_policy_violation(password)) is not None:
        raise ValueError(violation)
    return password


Email = Annotated[EmailStr, AfterValidator(_lowercase)]
NewPassword = Annotated[str, AfterValidator(_meets_policy)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoControls
]
RefreshToken = Annotated[str, StringConstraints(min_length=1, max_length=256), NoControls]


class RegisterRequest(RequestModel):
    """A new account. Unknown fields, `role` included, are refused: new users are USERs."""

    email: Email
    password: NewPassword
    name: Name


class LoginRequest(RequestModel):
    email: Email
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class RefreshRequest(RequestModel):
    refresh_token: RefreshToken


class RoleChange(RequestModel):
    role: Role


class ActiveChange(RequestModel):
    active: bool


class UserOut(CamelModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime


class TokenPair(CamelModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserOut


class Identity(CamelModel):
    user: UserOut


class UserPage(CamelModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: PageOffset
