"""Tracing (kit/tracing.py): off and inert without an endpoint; on, the W3C context goes into
headers and comes back out, through the outbox's stored context, the RabbitMQ relay, the
after-commit runner and the log lines."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any, cast

import httpx
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

from services.gateway.service import UpstreamClient
from services.kit import http1, tracing
from services.kit.after_commit import AfterCommit
from services.kit.logs import JsonFormatter
from services.kit.rabbit import Outgoing, Publisher
from services.kit.rabbit_outbox import OutgoingMessage
from services.kit.request_context import RequestContextMiddleware
from services.kit.tracing import TraceHeaders
from tests.unit.leading_relay import LeadingRabbitRelay

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (*tracing.ENDPOINT_VARIABLES, "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    tracing.trace_with(None)
    yield
    tracing.trace_with(None)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for every service configured in the test, into memory."""
    exporter = InMemorySpanExporter()

    def provider(service: str) -> TracerProvider:
        made = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        made.add_span_processor(SimpleSpanProcessor(exporter))
        return made

    tracing.trace_with(provider)
    yield exporter
    tracing.trace_with(None)


def _named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (found,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return found


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


# --- off ----------------------------------------------------------------------------------


def test_without_an_endpoint_nothing_is_traced(off: None) -> None:
    assert tracing.configure("orders") is False
    assert tracing.tracer("orders") is None
    with tracing.span("orders", "work", headers={"traceparent": TRACEPARENT}) as span:
        assert span is None
        assert tracing.current_headers() is None
        assert tracing.capture() is None
        assert tracing.log_ids() is None
    assert tracing.start_span("orders", "x", kind=SpanKind.PRODUCER, parent={}) is None
    assert tracing.client_span("orders", "GET", URL("http://orders:3002/x")) == (None, {})
    assert tracing.headers_of(None) == {}


@pytest.mark.parametrize(
    ("env", "exporting"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_an_otlp_endpoint_turns_exporting_on(
    off: None, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exporting: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.exporting() is exporting


def test_with_an_endpoint_the_service_exports_under_its_own_name(
    off: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(tracing, "_global_set", True)  # leave the process's provider alone
    assert tracing.configure("inventory") is True
    found = tracing.tracer("inventory")
    assert found is not None
    assert cast("Any", found).resource.attributes[SERVICE_NAME] == "inventory"


# --- headers ------------------------------------------------------------------------------


def test_a_span_s_headers_make_the_receiver_its_child(spans: InMemorySpanExporter) -> None:
    tracing.configure("orders")
    tracing.configure("inventory")
    with tracing.span("orders", "request", kind=SpanKind.SERVER) as request:
        assert request is not None
        stored = tracing.current_headers()
    assert stored is not None
    assert set(stored) == {"traceparent"}
    # As Kafka hands headers over: a list of (name, bytes) pairs.
    kafka_headers = [(name, value.encode()) for name, value in stored.items()]
    with tracing.span("inventory", "consume", kind=SpanKind.CONSUMER, headers=kafka_headers):
        pass
    request_span, consume_span = _named(spans, "request"), _named(spans, "consume")
    assert consume_span.context.trace_id == request_span.context.trace_id
    assert _parent_id(consume_span) == request_span.context.span_id
    assert consume_span.resource.attributes[SERVICE_NAME] == "inventory"


def test_tracestate_travels_and_garbage_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    tracing.configure("svc")
    incoming = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc", "other": "x"}
    with tracing.span("svc", "child", headers=incoming) as child:
        assert tracing.headers_of(child)["tracestate"] == "vendor=abc"
    with tracing.span("svc", "orphan", headers={"traceparent": "not-a-traceparent"}):
        pass
    child_span, orphan = _named(spans, "child"), _named(spans, "orphan")
    assert format(child_span.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert orphan.parent is None


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": TRACEPARENT},
        {"traceparent": TRACEPARENT.replace("-01", "-00"), "tracestate": "a=1,b=2"},
        {"traceparent": " " + TRACEPARENT},
        {"traceparent": TRACEPARENT + "-extra"},
        {"traceparent": "ff" + TRACEPARENT[2:]},
        {"traceparent": TRACEPARENT.replace("00f067aa0ba902b7", "0" * 16)},
        {"traceparent": "not-a-traceparent"},
        {"tracestate": "a=1"},
        {},
    ],
)
def test_contexts_and_headers_are_the_propagators_own(carrier: dict[str, str]) -> None:
    """The parsed contexts kept for reuse and the headers written without the propagator are
    what the propagator itself reads and writes, for any header it may meet."""
    propagator = TraceContextTextMapPropagator()
    expected = trace.get_current_span(propagator.extract(carrier)).get_span_context()
    as_kafka = [(name, value.encode()) for name, value in carrier.items()]
    as_asgi = [(name.encode(), value.encode()) for name, value in carrier.items()]
    for headers in (carrier, as_kafka, as_asgi, carrier):
        found = trace.get_current_span(tracing.extract(headers)).get_span_context()
        assert found == expected
        assert found.trace_state == expected.trace_state
    written: dict[str, str] = {}
    propagator.inject(written, context=trace.set_span_in_context(NonRecordingSpan(expected)))
    assert tracing.headers_of(NonRecordingSpan(expected)) == written
    with tracing.carrying(tracing.extract(carrier)):
        assert tracing.current_headers() == (written or None)


def test_a_context_seen_again_is_parsed_once() -> None:
    first = tracing.extract({"traceparent": TRACEPARENT})
    assert tracing.extract([("traceparent", TRACEPARENT.encode())]) is first
    assert tracing.extract({"traceparent": TRACEPARENT, "tracestate": "a=1"}) is not first


def test_a_relay_hop_without_a_stored_context_makes_no_trace(spans: InMemorySpanExporter) -> None:
    tracing.configure("svc")
    assert tracing.start_span("svc", "publish", kind=SpanKind.PRODUCER, parent=None) is None
    root = tracing.start_span("svc", "process", kind=SpanKind.CONSUMER, parent={}, root=True)
    assert root is not None
    tracing.end_span(root, RuntimeError("boom"))
    (ended,) = spans.get_finished_spans()
    assert ended.parent is None
    assert not ended.status.is_ok


def test_log_lines_carry_the_active_span_s_ids(spans: InMemorySpanExporter) -> None:
    tracing.configure("svc")
    formatter = JsonFormatter("svc")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))
    with tracing.span("svc", "work") as span:
        assert span is not None
        line = json.loads(formatter.format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


# --- after commit and the RabbitMQ relay ----------------------------------------------------


async def test_an_effect_runs_in_the_trace_of_the_change_that_submitted_it(
    spans: InMemorySpanExporter,
) -> None:
    tracing.configure("orders")
    queue = AfterCommit("orders")
    runner = queue.job()
    task = asyncio.create_task(runner.run())
    seen: list[tuple[str, str] | None] = []

    async def push_order() -> None:
        seen.append(tracing.log_ids())

    with tracing.span("orders", "consume"):
        queue.submit([push_order])
    queue.submit([push_order])  # submitted outside any trace: runs untraced
    async with asyncio.timeout(5):
        await queue.drained()
    runner.stop()
    await task
    consume, effect = _named(spans, "consume"), _named(spans, "after-commit push_order")
    assert effect.context.trace_id == consume.context.trace_id
    assert _parent_id(effect) == consume.context.span_id
    assert seen == [
        (format(effect.context.trace_id, "032x"), format(effect.context.span_id, "016x")),
        None,
    ]


class _Source:
    def __init__(self, rows: list[OutgoingMessage]) -> None:
        self.rows = rows

    async def pending(
        self, conn: Any, limit: int, confirmed: Sequence[Any]
    ) -> Sequence[OutgoingMessage]:
        rows, self.rows = self.rows, []
        return rows

    async def confirmed(self, conn: Any, keys: Sequence[Any]) -> None:
        return


class _Broker:
    url = "amqp://unused"

    def __init__(self) -> None:
        self.published: list[Outgoing] = []

    async def publish(self, messages: Sequence[Outgoing]) -> list[BaseException | None]:
        self.published += messages
        return [None for _ in messages]


async def test_the_rabbit_relay_publishes_a_row_in_the_trace_it_stored(
    spans: InMemorySpanExporter,
) -> None:
    tracing.configure("notifications")
    tracing.configure("push-worker")
    with tracing.span("notifications", "order.created process") as consumer:
        stored = tracing.current_headers()
    assert consumer is not None
    broker = _Broker()
    rows = [
        OutgoingMessage("traced", Outgoing("push.notifications", b"{}", "m-1", {"a": "1"}), stored),
        OutgoingMessage("untraced", Outgoing("push.notifications", b"{}", "m-2", {"a": "2"})),
    ]
    relay = LeadingRabbitRelay(
        service="notifications",
        publisher=cast("Publisher", broker),
        source=_Source(rows),
        conninfo="",
        schema="s",
        channel="deliveries",
    )
    assert await relay.publish_batch() == 2
    traced, untraced = broker.published
    assert untraced.headers == {"a": "2"}
    assert traced.headers["a"] == "1"
    publish = _named(spans, "push.notifications publish")
    assert publish.kind is SpanKind.PRODUCER
    assert _parent_id(publish) == consumer.get_span_context().span_id
    with tracing.span("push-worker", "send", headers=traced.headers):
        pass
    send = _named(spans, "send")
    assert send.context.trace_id == publish.context.trace_id
    assert _parent_id(send) == publish.context.span_id


# --- a trace that is not recorded ---------------------------------------------------------

UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
UNSAMPLED_IDS = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_an_unsampled_trace_is_passed_on_hop_by_hop_without_spans(
    spans: InMemorySpanExporter,
) -> None:
    tracing.configure("inventory")
    kafka_headers = [("traceparent", UNSAMPLED.encode())]
    with tracing.span("inventory", "consume", kind=SpanKind.CONSUMER, headers=kafka_headers) as s:
        assert s is not None
        assert not s.is_recording()
        # What the outbox stores and the log lines carry: the trace it came in.
        assert tracing.current_headers() == {"traceparent": UNSAMPLED}
        assert tracing.log_ids() == UNSAMPLED_IDS
        captured = tracing.capture()
        with tracing.span("inventory", "after-commit push", parent=captured) as effect:
            assert effect is not None
            assert not effect.is_recording()
            assert tracing.current_headers() == {"traceparent": UNSAMPLED}
    assert tracing.current_headers() is None

    # A relay's publish and a RabbitMQ consumer's message: the parent's context goes on.
    publish = tracing.start_span(
        "inventory", "publish", kind=SpanKind.PRODUCER, parent={"traceparent": UNSAMPLED}
    )
    assert publish is not None
    assert tracing.headers_of(publish) == {"traceparent": UNSAMPLED}
    with tracing.use(publish):
        assert tracing.log_ids() == UNSAMPLED_IDS
    assert tracing.log_ids() is None
    tracing.end_span(publish, RuntimeError("boom"))
    assert spans.get_finished_spans() == ()


def test_a_sampler_that_ignores_the_parent_still_records_under_an_unsampled_one() -> None:
    exporter = InMemorySpanExporter()

    def provider(service: str) -> TracerProvider:
        made = TracerProvider(sampler=ALWAYS_ON)
        made.add_span_processor(SimpleSpanProcessor(exporter))
        return made

    tracing.trace_with(provider)
    try:
        tracing.configure("svc")
        with tracing.span("svc", "consume", headers={"traceparent": UNSAMPLED}) as s:
            assert s is not None
            assert s.is_recording()
        (recorded,) = exporter.get_finished_spans()
        assert _parent_id(recorded) == int(UNSAMPLED_IDS[1], 16)
    finally:
        tracing.trace_with(None)


async def test_requests_pass_an_unsampled_trace_on_and_record_a_sampled_one(
    spans: InMemorySpanExporter,
) -> None:
    """The kit's request middleware and the gateway's upstream client."""
    tracing.configure("orders")
    tracing.configure("gateway")
    received: list[str | None] = []

    async def upstream(request: web.Request) -> web.Response:
        received.append(request.headers.get("traceparent"))
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_get("/work", upstream)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    seen: list[TraceHeaders | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(tracing.current_headers())
        client = UpstreamClient(http1.Client(), 5.0, "gateway")
        try:
            # A traceparent the caller sent is replaced by the gateway's own.
            await client.request(
                "GET", URL(f"http://127.0.0.1:{port}/work"), [("traceparent", TRACEPARENT)]
            )
        finally:
            client.http.close()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    served = RequestContextMiddleware(app, "orders")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://orders"
        ) as client:
            await client.get("/orders", headers={"traceparent": UNSAMPLED})
            assert seen == [{"traceparent": UNSAMPLED}]
            assert received == [UNSAMPLED]
            assert spans.get_finished_spans() == ()

            sampled = UNSAMPLED[:-2] + "01"
            await client.get("/orders", headers={"traceparent": sampled})
    finally:
        await runner.cleanup()
    request, call = _named(spans, "GET unmatched"), _named(spans, "GET 127.0.0.1")
    assert _parent_id(request) == int(UNSAMPLED_IDS[1], 16)
    assert _parent_id(call) == request.context.span_id
    assert received[1] == f"00-{UNSAMPLED_IDS[0]}-{format(call.context.span_id, '016x')}-01"
