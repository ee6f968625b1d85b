"""The auth service's Prometheus metrics (bounded label sets)."""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter(
    "auth_logins_total",
    "Login attempts by outcome (success, invalid, rate_limited).",
    ["outcome"],
)
REGISTRATIONS = Counter(
    "auth_registrations_total",
    "Registrations by outcome (created, duplicate, rate_limited).",
    ["outcome"],
)
REFRESHES = Counter(
    "auth_token_refreshes_total",
    "Refresh token presentations by outcome (rotated, reused, revoked, expired, unknown).",
    ["outcome"],
)

# Every series exists from the start, so rate() and alerts see zeros rather than gaps.
for _outcome in ("success", "invalid", "rate_limited"):
    LOGINS.labels(_outcome)
for _outcome in ("created", "duplicate", "rate_limited"):
    REGISTRATIONS.labels(_outcome)
for _outcome in ("rotated", "reused", "revoked", "expired", "unknown"):
    REFRESHES.labels(_outcome)
