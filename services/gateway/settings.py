"""The gateway's settings: where each upstream service lives and how far to wait for it.

The upstreams are those of `services/registry.py`. Each has a URL field named after its
registry variable (the seed's AUTH_SERVICE_URL, ORDER_SERVICE_URL...), defaulting to the
service's port on this machine, so adding a service to the registry adds its variable here.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, Field, create_model, field_validator
from pydantic_settings import NoDecode

from services.gateway.routes import Upstream
from services.kit.settings import ServiceSettings
from services.registry import UPSTREAMS, Service, service

DEFAULT_CORS_ORIGINS = ["http://localhost:5173", "http://localhost:5174"]


def _url_field(upstream: Service) -> str:
    """The field holding an upstream's URL: its variable in lower case (`order_service_url`)."""
    assert upstream.url_variable is not None, f"{upstream.name} is no upstream"
    return upstream.url_variable.lower()


def _plain_http(upstream: Service) -> AfterValidator:
    """Refuses any scheme but http: the upstream client (services/kit/http1.py) speaks plain
    HTTP/1.1 to the services inside the cluster, where TLS, if any, is the mesh's."""

    def check(url: AnyHttpUrl) -> AnyHttpUrl:
        if url.scheme != "http":
            raise ValueError(
                f"{upstream.url_variable} must be an http:// URL (the gateway reaches the "
                f"services over plain HTTP), not {url}"
            )
        return url

    return AfterValidator(check)


# The registry decides these fields, so they are made when the module loads; mypy sees only
# the base class, and reads them through upstream_url().
if TYPE_CHECKING:
    _UpstreamUrls = ServiceSettings
else:
    _UpstreamUrls = create_model(
        "_UpstreamUrls",
        __base__=ServiceSettings,
        **{
            _url_field(upstream): (
                Annotated[AnyHttpUrl, _plain_http(upstream)],
                Field(default=AnyHttpUrl(upstream.local_url), alias=upstream.url_variable),
            )
            for upstream in UPSTREAMS
        },
    )


class Settings(_UpstreamUrls):
    """Seed names for the upstream URLs (AUTH_SERVICE_URL...), plus the proxy's own limits."""

    service_name: str = "gateway"
    port: int = Field(default=service("gateway").default_port, alias="PORT")

    # The public edge keeps an idle connection 75 s: longer than the idle timeouts of the load
    # balancers and proxies usually in front of it (60 s), and than clients' pools (aiohttp
    # 15 s), so they, not the gateway, close an idle connection. At 5 s the bench's pool,
    # coming back to connections idle since an overload burst, had creates fail unanswered.
    keep_alive_seconds: int = Field(default=75, alias="HTTP_KEEP_ALIVE_SECONDS", gt=0)
    upstream_timeout_seconds: float = Field(default=10.0, alias="UPSTREAM_TIMEOUT_SECONDS", gt=0)
    upstream_max_connections: int = Field(default=200, alias="UPSTREAM_MAX_CONNECTIONS", gt=0)
    # Below uvicorn's 5 s keep-alive on the upstreams, so the gateway drops an idle connection
    # before the service does, instead of racing it with a request on a closing socket.
    upstream_keepalive_seconds: float = Field(default=4.0, alias="UPSTREAM_KEEPALIVE_SECONDS", gt=0)
    max_request_body_bytes: int = Field(default=1024 * 1024, alias="MAX_REQUEST_BODY_BYTES", gt=0)
    # Admission control (admission.py), for each upstream: requests forwarded at once, then
    # how many may wait for a slot and how long, before a 503 with Retry-After.
    upstream_max_in_flight: int = Field(default=16, alias="UPSTREAM_MAX_IN_FLIGHT", gt=0)
    upstream_queue_length: int = Field(default=64, alias="UPSTREAM_QUEUE_LENGTH", ge=0)
    upstream_queue_seconds: float = Field(default=0.25, alias="UPSTREAM_QUEUE_SECONDS", ge=0)
    # Every slot held this long (none given back with nobody waiting): the queue is a standing
    # one, and who joins it waits the shorter time.
    upstream_queue_standing_seconds: float = Field(
        default=0.1, alias="UPSTREAM_QUEUE_STANDING_SECONDS", ge=0
    )
    upstream_queue_standing_wait_seconds: float = Field(
        default=0.005, alias="UPSTREAM_QUEUE_STANDING_WAIT_SECONDS", ge=0
    )
    overload_retry_after_seconds: int = Field(default=1, alias="OVERLOAD_RETRY_AFTER_SECONDS", ge=1)
    # How long an upstream's 503 with Retry-After is repeated for its method and route without
    # asking the upstream again (admission.py); 0 forwards every request.
    upstream_refusal_hold_seconds: float = Field(
        default=0.05, alias="UPSTREAM_REFUSAL_HOLD_SECONDS", ge=0
    )
    # The product list from memory (services/gateway/products.py): a change is served at most
    # twice the check interval after inventory marked it; 0 entries turns the copy off.
    product_cache_check_seconds: float = Field(
        default=0.5, alias="PRODUCT_CACHE_CHECK_SECONDS", gt=0
    )
    product_cache_max_entries: int = Field(default=256, alias="PRODUCT_CACHE_MAX_ENTRIES", ge=0)
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
        return {
            upstream.name: str(getattr(self, _url_field(upstream))).rstrip("/")
            for upstream in UPSTREAMS
        }

    def upstream_url(self, upstream: Upstream) -> str:
        """The base URL of an upstream service, without a trailing slash."""
        return self._upstream_urls[upstream]
