"""OpenTelemetry tracing: one trace per order, across HTTP, Kafka, the outboxes and RabbitMQ.

Tracing is **off unless an OTLP endpoint is configured** (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, the standard variables; `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` turn it off again). `configure(service)`, called once per service by
the kit's app factory (kit/web.py), then gives the service a tracer whose resource says
`service.name=<service>` and whose spans go out over OTLP/HTTP in batches. Off, no tracer
exists: every helper here returns at once (a dictionary lookup, or a context-variable read), no
span object is made, nothing is written to a message header or an outbox row.

Where the trace goes, hop by hop (W3C trace context, `traceparent` and `tracestate`):

- HTTP: the kit's request context (kit/request_context.py, for the middleware and the front
  routes) starts a SERVER span from the request's headers; the
  gateway's upstream client starts a CLIENT span per request and sends its context
  (`client_span`).
- Outboxes: an event written to an outbox stores the context active at that moment with its row
  (`current_headers`: the Kafka outbox's `trace_context` column, the notification deliveries'
  own); the relay publishes each row in a PRODUCER span, child of that stored context, whose
  context travels in the message's headers (`start_span`, `headers_of`). The relay's own loop
  is not traced: a trace is an order's, not the relay's.
- Consumers (kit/consumer.py, kit/rabbit_consumer.py) start a CONSUMER span, child of the
  message headers' context (`span(..., headers=...)`), so everything the handler writes to an
  outbox continues the same trace.
- After-commit effects (kit/after_commit.py) run later on another task; the context of the
  change that submitted them is captured (`capture`) and their span is its child, so the
  Socket.IO push of a committed change sits in the order's trace.

Log lines carry `trace_id` and `span_id` while a span is active (`log_ids`, kit/logs.py).

A trace its first service chose not to record (the sampler's ratio, `OTEL_TRACES_SAMPLER_ARG`)
is only passed on: where the service's sampler follows the parent's decision (every
`parentbased_*` sampler, the default one included), a span whose parent was not sampled would
record nothing, so none is made. The parent's context itself is made current and sent on
(`traceparent` with its flags 00), so every later hop knows the trace is not recorded and log
lines still carry its trace id. At a ratio of 1% this is 99 orders in 100, where making the
spans the SDK drops anyway took 3 to 4% more of each service's profile samples than passing
the context on (docs/benchmarks-analysis.md).

A process usually runs one service; tests run several apps in one process, so tracers are kept
per service name, each with its own resource. `trace_with(make_provider)` makes every service
configured afterwards use the provider it returns (tests: an in-memory exporter).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import Token
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
TRACE_HEADERS = ("traceparent", "tracestate")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
INSTRUMENTATION = "realtimeorder"
EXTRACTED_CONTEXTS = 4096
"""How many recent `traceparent`s keep their parsed context (`extract`)."""
TraceHeaders = dict[str, str]
"""`traceparent` (and `tracestate` when there is one): what a message or an outbox row carries."""

_propagator = TraceContextTextMapPropagator()
_tracers: dict[str, Tracer] = {}
_follow_parent: set[str] = set()
"""Services whose sampler records no span under a parent that was not sampled."""
_make_provider: Callable[[str], TracerProvider] | None = None
_global_set = False


def exporting(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment (this process's unless given) asks for spans to be exported
    over OTLP."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure(service: str) -> bool:
    """Give `service` a tracer if tracing is on (see the module docstring); whether it is."""
    global _global_set
    if service in _tracers:
        return True
    if _make_provider is not None:
        provider = _make_provider(service)
    elif exporting():
        provider = _otlp_provider(service)
        if not _global_set:
            # Libraries that trace through the global provider report as this service.
            trace.set_tracer_provider(provider)
            _global_set = True
        log.info("tracing exported over OTLP", extra={"service_name": service})
    else:
        return False
    _tracers[service] = provider.get_tracer(INSTRUMENTATION)
    if _drops_unsampled_parents(provider):
        _follow_parent.add(service)
    return True


def _drops_unsampled_parents(provider: TracerProvider) -> bool:
    """Whether the provider's sampler drops every span whose parent (remote or local) was not
    sampled: `ParentBased` with its default delegates for those two cases."""
    from opentelemetry.sdk.trace.sampling import ParentBased

    sampler = provider.sampler
    description = sampler.get_description()
    return isinstance(sampler, ParentBased) and all(
        f"{case}:AlwaysOffSampler" in description
        for case in ("remoteParentNotSampled", "localParentNotSampled")
    )


def _otlp_provider(service: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the service's own name wins.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def trace_with(make_provider: Callable[[str], TracerProvider] | None) -> None:
    """Use `make_provider(service)` for every service configured from now on (None: the
    environment decides again); forgets the services configured so far."""
    global _make_provider
    _make_provider = make_provider
    _tracers.clear()
    _follow_parent.clear()


def tracer(service: str) -> Tracer | None:
    """The service's tracer, None while tracing is off."""
    return _tracers.get(service)


def unsampled(service: str, context: Context | None = None) -> Span | None:
    """The parent span in `context` (the active one if None) when it belongs to a trace that is
    not recorded and `service` would record no span under it (see the module docstring): what
    to pass on instead of a span. None when a span is to be made."""
    if service not in _follow_parent:
        return None
    parent = trace.get_current_span(context)
    found = parent.get_span_context()
    if found.is_valid and not found.trace_flags.sampled and not parent.is_recording():
        return parent
    return None


def carrying(context: Context | None) -> AbstractContextManager[None]:
    """Make `context` the active one for the block (nothing to do for None: the active one
    stays)."""
    return nullcontext() if context is None else _Attached(context)


class _Attached:
    """`carrying`'s block: a plain context manager, not a generator's, as it runs for nearly
    every message and request."""

    __slots__ = ("context", "token")

    def __init__(self, context: Context) -> None:
        self.context = context
        self.token: Token[Context] | None = None

    def __enter__(self) -> None:
        self.token = otel_context.attach(self.context)

    def __exit__(self, *_exc: object) -> None:
        if self.token is not None:
            otel_context.detach(self.token)


# --- the context in headers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Carried:
    """A context read from headers, and its parent span when that belongs to a trace that is
    not recorded (what `unsampled` finds in it), worked out once with the parse."""

    context: Context
    unsampled: Span | None


_NOTHING_CARRIED = _Carried(Context(), None)


def extract(headers: Mapping[str, Any] | Iterable[tuple[str | bytes, Any]] | None) -> Context:
    """The trace context carried by message headers (Kafka's list of pairs, AMQP's or an outbox
    row's mapping, an ASGI scope's list of byte pairs; values as str or bytes); an empty
    context when there is none."""
    return _carried(headers).context


def _carried(
    headers: Mapping[str, Any] | Iterable[tuple[str | bytes, Any]] | None,
) -> _Carried:
    traceparent: str | None = None
    tracestate: str | None = None
    if headers:
        # A list first: Kafka's headers and an ASGI scope's, without the ABC's check.
        pairs = headers if isinstance(headers, list) else _pairs(headers)
        for name, value in pairs:
            if value is None:
                continue
            if name == "traceparent" or name == b"traceparent":
                traceparent = _text(value)
            elif name == "tracestate" or name == b"tracestate":
                tracestate = _text(value)
    if traceparent is None:
        return _NOTHING_CARRIED
    return _extracted(traceparent, tracestate)


def _pairs(
    headers: Mapping[str, Any] | Iterable[tuple[str | bytes, Any]],
) -> Iterable[tuple[str | bytes, Any]]:
    return headers.items() if isinstance(headers, Mapping) else headers


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@lru_cache(maxsize=EXTRACTED_CONTEXTS)
def _extracted(traceparent: str, tracestate: str | None) -> _Carried:
    """The context of a `traceparent` (and `tracestate`), parsed once while it is among the
    last `EXTRACTED_CONTEXTS`: an order's context reaches a service at several hops (its
    consumer, its outbox, its relay), and a context is immutable, so one object serves them
    all."""
    carrier = {"traceparent": traceparent}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    context = _propagator.extract(carrier)
    parent = trace.get_current_span(context)
    found = parent.get_span_context()
    unsampled = found.is_valid and not found.trace_flags.sampled and not parent.is_recording()
    return _Carried(context, parent if unsampled else None)


def _headers(span_context: SpanContext) -> TraceHeaders | None:
    """`span_context` as W3C headers, as the propagator writes them; None for an invalid one."""
    if not span_context.is_valid:
        return None
    carrier = {
        "traceparent": _traceparent(
            span_context.trace_id, span_context.span_id, span_context.trace_flags
        )
    }
    if span_context.trace_state:
        carrier["tracestate"] = span_context.trace_state.to_header()
    return carrier


@lru_cache(maxsize=EXTRACTED_CONTEXTS)
def _traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """The `traceparent` of a span context (written once while it is among the recent ones)."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def headers_of(span: Span | None) -> TraceHeaders:
    """The headers that make a receiver's span a child of `span` (none for no span)."""
    if span is None:
        return {}
    return _headers(span.get_span_context()) or {}


def current_headers() -> TraceHeaders | None:
    """The active span's context as headers (what an outbox row stores), None without one."""
    return _headers(trace.get_current_span().get_span_context())


def capture() -> Context | None:
    """The active context if a span is active (to continue it on another task), else None."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    from opentelemetry.context import get_current

    return get_current()


def log_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the active span, None without one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# --- spans ------------------------------------------------------------------------------------


@contextmanager
def span(
    service: str,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    headers: Mapping[str, Any] | Iterable[tuple[str | bytes, Any]] | None = None,
    parent: Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span | None]:
    """A span made current for the block: a child of the context in `headers` if given (a
    message's: a root span when they carry none), else of `parent`, else of the active span.
    Yields None, and costs nothing, while tracing is off. An exception marks it failed."""
    found = _tracers.get(service)
    if found is None:
        yield None
        return
    if headers is not None:
        carried = _carried(headers)
        context: Context | None = carried.context
        passed = carried.unsampled if service in _follow_parent else None
    else:
        context = parent
        passed = unsampled(service, context)
    if passed is not None:
        with carrying(context):
            yield passed
        return
    with found.start_as_current_span(name, context=context, kind=kind, attributes=attributes) as s:
        yield s


def start_span(
    service: str,
    name: str,
    *,
    kind: SpanKind,
    parent: Mapping[str, Any] | Iterable[tuple[str | bytes, Any]] | None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    root: bool = False,
) -> Span | None:
    """A span the caller ends, child of the context stored in `parent` (an outbox row's or a
    message's headers). None while tracing is off, and when `parent` carries no context unless
    `root` (a consumer's message: its own trace); a relay's publish that belongs to no
    request's trace is not worth a trace of its own."""
    found = _tracers.get(service)
    if found is None:
        return None
    carried = _carried(parent)
    if carried.unsampled is not None and service in _follow_parent:
        return carried.unsampled  # ending it does nothing; its headers are the parent's
    context = carried.context
    if not root and not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return found.start_span(name, context=context, kind=kind, attributes=attributes)


def end_span(span: Span | None, error: BaseException | None = None) -> None:
    """End a span of `start_span`, failed if `error` is given."""
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()


@contextmanager
def use(span: Span | None) -> Iterator[None]:
    """Make a span of `start_span` the active one for the block (without ending it)."""
    if span is None:
        yield
        return
    if not span.is_recording():
        with carrying(trace.set_span_in_context(span)):
            yield
        return
    with trace.use_span(span, end_on_exit=False):
        yield


def set_attributes(attributes: Mapping[str, str | int | float | bool]) -> None:
    """Add attributes to the active span, if one is recording."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(attributes)


# --- an outgoing HTTP request -----------------------------------------------------------------


def client_span(service: str, method: str, url: URL) -> tuple[Span | None, TraceHeaders]:
    """A CLIENT span for an HTTP request to `url`, child of the active span, and the headers
    that send its context (they replace any trace headers the request had). A trace that is
    not recorded is passed on without a span: (None, the parent's headers). (None, {}) while
    tracing is off. End the span with `end_client_span`, or `end_span` on a failure."""
    found = _tracers.get(service)
    if found is None:
        return None, {}
    passed = unsampled(service)
    if passed is not None:
        return None, headers_of(passed)
    host = url.raw_host or ""
    client = found.start_span(
        f"{method} {host}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": method,
            "url.full": str(url.with_query(None)),
            "server.address": host,
        },
    )
    return client, headers_of(client)


def end_client_span(span: Span | None, status: int) -> None:
    """End a span of `client_span` with the answer's status (failed for a 5xx)."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
