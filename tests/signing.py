"""The token settings every service of a test platform shares."""

from __future__ import annotations

JWT_SECRET = "test-platform-token-secret-0123456789abcdef0123456789"


def token_env() -> dict[str, str]:
    """What each service's settings take to sign (auth) or verify (every service) tokens."""
    return {"JWT_SECRET": JWT_SECRET}
