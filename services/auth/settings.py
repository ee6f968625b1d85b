"""Settings of the auth service (environment variables; the seed's names keep working)."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator, model_validator

from services.kit.keys import InvalidKeyError, SigningKey, read_setting
from services.kit.settings import ServiceSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The memory concurrent argon2 work may take by default: 256 MiB is four hashes at the default
# 64 MiB cost, well inside the chart's 768 MiB limit for auth beside the service's own memory.
PASSWORD_HASH_MEMORY_BUDGET_KIB = 256 * 1024

# The development signing key, whose public half is the kit's DEVELOPMENT_PUBLIC_KEY: published,
# so refused outside development.
DEVELOPMENT_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIM876z1R7tDu1VKjAjJS4jgLbb3t9ttdkIg8RMr4l+1u
-----END PRIVATE KEY-----
"""


class Settings(ServiceSettings):
    """The auth service's settings.

    Rate limits use fixed windows in Redis, counted per client address and, for failed logins,
    per normalised email and client address together:

    - `login_email_max_failures` failed logins (LOGIN_EMAIL_MAX_FAILURES, default 5) for one
      email from one client address within `login_email_window_seconds`
      (LOGIN_EMAIL_WINDOW_SECONDS, default 300) block further attempts for that email from that
      address until the window ends; a successful login from there clears the count. Other
      addresses are not blocked, so strangers cannot lock the owner out.
    - `login_address_max_attempts` attempts of any outcome (LOGIN_ADDRESS_MAX_ATTEMPTS, default
      20) per client address within `login_address_window_seconds`
      (LOGIN_ADDRESS_WINDOW_SECONDS, default 60).
    - `register_address_max_attempts` registrations of any outcome
      (REGISTER_ADDRESS_MAX_ATTEMPTS, default 10) per client address within
      `register_address_window_seconds` (REGISTER_ADDRESS_WINDOW_SECONDS, default 3600).

    The client address is the socket peer, unless the peer is one of `trusted_proxies`
    (TRUSTED_PROXIES: comma-separated addresses or CIDR networks, default the loopback
    addresses where the gateway runs), in which case it is taken from X-Forwarded-For.

    Password hashing is argon2id with the ARGON2_* parameters (argon2-cffi's RFC 9106
    low-memory profile by default); a stored hash made with other parameters is rehashed at the
    next successful login. Each hash or verify takes ARGON2_MEMORY_COST_KIB of memory, so at
    most `password_hash_slots` run at once (PASSWORD_HASH_CONCURRENCY; by default as many as
    fit in 256 MiB, 4 with the default memory cost), half of them kept for logins; the others
    wait their turn.

    Access tokens are signed with the Ed25519 private key of JWT_PRIVATE_KEY or
    JWT_PRIVATE_KEY_FILE (PKCS#8 PEM), held by auth alone; auth verifies with its public half
    and with any JWT_PUBLIC_KEY given (a key being rotated out). Outside development the key is
    required and the development key is refused.
    """

    service_name: str = "auth"
    port: int = Field(default=3001, alias="PORT")

    refresh_token_ttl_seconds: int = Field(
        default=14 * 24 * 3600, alias="REFRESH_TOKEN_TTL_SECONDS", gt=0
    )

    login_email_max_failures: int = Field(default=5, alias="LOGIN_EMAIL_MAX_FAILURES", gt=0)
    login_email_window_seconds: int = Field(default=300, alias="LOGIN_EMAIL_WINDOW_SECONDS", gt=0)
    login_address_max_attempts: int = Field(default=20, alias="LOGIN_ADDRESS_MAX_ATTEMPTS", gt=0)
    login_address_window_seconds: int = Field(
        default=60, alias="LOGIN_ADDRESS_WINDOW_SECONDS", gt=0
    )
    register_address_max_attempts: int = Field(
        default=10, alias="REGISTER_ADDRESS_MAX_ATTEMPTS", gt=0
    )
    register_address_window_seconds: int = Field(
        default=3600, alias="REGISTER_ADDRESS_WINDOW_SECONDS", gt=0
    )
    trusted_proxies: str = Field(default="127.0.0.1,::1", alias="TRUSTED_PROXIES")

    argon2_time_cost: int = Field(default=3, alias="ARGON2_TIME_COST", ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, alias="ARGON2_MEMORY_COST_KIB", ge=8)
    argon2_parallelism: int = Field(default=4, alias="ARGON2_PARALLELISM", ge=1)
    password_hash_concurrency: int | None = Field(
        default=None, alias="PASSWORD_HASH_CONCURRENCY", gt=0
    )

    jwt_private_key: SecretStr | None = Field(default=None, alias="JWT_PRIVATE_KEY")
    jwt_private_key_file: Path | None = Field(default=None, alias="JWT_PRIVATE_KEY_FILE")

    admin_email: str | None = Field(default=None, alias="ADMIN_EMAIL")
    admin_password: SecretStr | None = Field(default=None, alias="ADMIN_PASSWORD")

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        _parse_networks(value)
        return value

    @cached_property
    def signing_key(self) -> SigningKey:
        """The key auth signs access tokens with (kit/keys.py)."""
        inline = self.jwt_private_key.get_secret_value() if self.jwt_private_key else None
        pem = read_setting(inline, self.jwt_private_key_file, "JWT_PRIVATE_KEY")
        if pem is None and self.environment == "development":
            pem = DEVELOPMENT_PRIVATE_KEY
        if pem is None:
            raise InvalidKeyError(
                "no token signing key: set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE (an Ed25519 "
                f"private key, PKCS#8 PEM) when APP_ENV={self.environment}"
            )
        return SigningKey.from_pem(pem)

    def _own_verifying_keys(self) -> dict[str, Ed25519PublicKey]:
        return {self.signing_key.kid: self.signing_key.public_key}

    @model_validator(mode="after")
    def _require_signing_key(self) -> Self:
        try:
            key = self.signing_key
        except InvalidKeyError as exc:
            raise ValueError(f"the token signing key is not usable: {exc}") from exc
        development = SigningKey.from_pem(DEVELOPMENT_PRIVATE_KEY)
        if self.environment != "development" and key.kid == development.kid:
            raise ValueError(
                "JWT_PRIVATE_KEY is the development key; use a real key pair when "
                f"APP_ENV={self.environment}"
            )
        return self

    @property
    def password_hash_slots(self) -> int:
        """How many argon2 hashes or verifies may run at once."""
        if self.password_hash_concurrency is not None:
            return self.password_hash_concurrency
        return max(1, PASSWORD_HASH_MEMORY_BUDGET_KIB // self.argon2_memory_cost_kib)

    @cached_property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return _parse_networks(self.trusted_proxies)


def _parse_networks(value: str) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in value.split(",")
        if entry.strip()
    )
