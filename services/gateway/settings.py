"""The gateway's settings: where each upstream service lives and how far to wait for it."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import NoDecode

from services.gateway.routes import Upstream
from services.kit.settings import ServiceSettings

DEFAULT_CORS_ORIGINS = ["http://localhost:5173", "http://localhost:5174"]


class Settings(ServiceSettings):
    """Seed names for the upstream URLs (AUTH_SERVICE_URL...), plus the proxy's own limits."""

    service_name: str = "gateway"
    port: int = Field(default=3000, alias="PORT")

    auth_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3001"), alias="AUTH_SERVICE_URL"
    )
    order_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3002"), alias="ORDER_SERVICE_URL"
    )
    inventory_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3003"), alias="INVENTORY_SERVICE_URL"
    )
    notification_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3004"), alias="NOTIFICATION_SERVICE_URL"
    )
    analytics_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:3005"), alias="ANALYTICS_SERVICE_URL"
    )

    upstream_timeout_seconds: float = Field(default=10.0, alias="UPSTREAM_TIMEOUT_SECONDS", gt=0)
    upstream_max_connections: int = Field(default=200, alias="UPSTREAM_MAX_CONNECTIONS", gt=0)
    # Below uvicorn's 5 s keep-alive on the upstreams, so the gateway drops an idle connection
    # before the service does, instead of racing it with a request on a closing socket.
    upstream_keepalive_seconds: float = Field(default=4.0, alias="UPSTREAM_KEEPALIVE_SECONDS", gt=0)
    max_request_body_bytes: int = Field(default=1024 * 1024, alias="MAX_REQUEST_BODY_BYTES", gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CORS_ORIGINS), alias="CORS_ORIGINS"
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @cached_property
    def _upstream_urls(self) -> dict[Upstream, str]:
        urls: dict[Upstream, AnyHttpUrl] = {
            "auth": self.auth_service_url,
            "orders": self.order_service_url,
            "inventory": self.inventory_service_url,
            "notifications": self.notification_service_url,
            "analytics": self.analytics_service_url,
        }
        return {upstream: str(url).rstrip("/") for upstream, url in urls.items()}

    def upstream_url(self, upstream: Upstream) -> str:
        """The base URL of an upstream service, without a trailing slash."""
        return self._upstream_urls[upstream]
