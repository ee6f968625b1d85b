"""Request bodies: normalised emails, the password policy, and no self-assigned role."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.auth.schemas import LoginRequest, RegisterRequest, TokenPair, UserOut


def test_register_normalises_email_and_name() -> None:
    body = RegisterRequest.model_validate(
        {"email": "Ada.Lovelace@Example.COM", "password": "long enough", "name": "  Ada  "}
    )
    assert body.email == "ada.lovelace@example.com"
    assert body.name == "Ada"


def test_register_refuses_a_self_assigned_role_by_name() -> None:
    with pytest.raises(ValidationError) as raised:
        RegisterRequest.model_validate(
            {"email": "a@example.com", "password": "long enough", "name": "A", "role": "ADMIN"}
        )
    assert [error["loc"] for error in raised.value.errors()] == [("role",)]


@pytest.mark.parametrize("name", ["Ada\x00", "Ada\nLovelace", "\x1b[2J"])
def test_a_name_with_control_characters_is_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate(
            {"email": "a@example.com", "password": "long enough", "name": name}
        )


def test_register_reports_every_bad_field() -> None:
    with pytest.raises(ValidationError) as raised:
        RegisterRequest.model_validate({"email": "nope", "password": "short", "name": ""})
    assert {error["loc"][0] for error in raised.value.errors()} == {"email", "password", "name"}


def test_login_lowercases_the_email_but_not_the_password() -> None:
    body = LoginRequest.model_validate({"email": "ADA@EXAMPLE.COM", "password": "MiXeD"})
    assert (body.email, body.password) == ("ada@example.com", "MiXeD")


def test_responses_are_camel_case() -> None:
    user = UserOut.model_validate(
        {
            "id": "6f1c2a4e-8d8f-4e8a-9f57-1e2f3a4b5c6d",
            "email": "a@example.com",
            "name": "A",
            "role": "USER",
            "active": True,
            "created_at": "2026-01-01T00:00:00Z",
        }
    )
    pair = TokenPair(access_token="a", refresh_token="r", expires_in=900, user=user)
    dumped = pair.model_dump(mode="json", by_alias=True)
    assert set(dumped) == {"accessToken", "refreshToken", "tokenType", "expiresIn", "user"}
    assert dumped["tokenType"] == "Bearer"
    assert "createdAt" in dumped["user"]
