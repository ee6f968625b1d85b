"""One order, one trace: from the gateway to the notification worker, every hop a child of the
one before it.

The order goes in through the gateway's proxy (POST /orders) and its trace is followed along
the order.confirmed path: gateway (server, then its client call) -> orders (POST /orders, which
writes order.created to the outbox) -> orders' relay (publishes it) -> inventory (consumes it,
reserves, writes order.confirmed) -> inventory's relay -> orders (consumes order.confirmed)
-> its Socket.IO push after commit; and notifications (consumes order.confirmed, records the
push delivery) -> the delivery relay -> the push worker (sends it).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from services.notifications.domain import Channel
from services.notifications.topology import WORK_QUEUES
from tests.integration.orders.support import ADDRESS
from tests.integration.tracing.conftest import TracedPlatform, service_of
from tests.support import eventually

pytestmark = pytest.mark.integration
PUSH_QUEUE = WORK_QUEUES[Channel.PUSH]


def _one(spans: list[ReadableSpan], service: str, name: str, parent: ReadableSpan) -> ReadableSpan:
    """The span of `service` named `name` whose parent is `parent`."""
    found = [
        s
        for s in spans
        if service_of(s) == service
        and s.name == name
        and s.parent is not None
        and s.parent.span_id == parent.context.span_id
    ]
    seen = sorted(f"{service_of(s)}: {s.name}" for s in spans)
    assert len(found) == 1, f"no single {service} span {name!r} under {parent.name!r}; {seen}"
    return found[0]


async def test_an_order_is_one_trace_from_the_gateway_to_the_notification_worker(
    platform: TracedPlatform,
) -> None:
    product = await platform.product()
    request_id = uuid.uuid4().hex
    order_id = await platform.place(platform.user(), product, request_id)
    spans = await platform.notified(request_id)
    assert len({s.context.trace_id for s in spans}) == 1

    (gateway,) = [s for s in spans if s.parent is None]
    assert service_of(gateway) == "gateway"
    assert gateway.kind is SpanKind.SERVER
    assert gateway.name == "POST /orders"
    upstream = _one(spans, "gateway", "POST 127.0.0.1", gateway)
    assert upstream.kind is SpanKind.CLIENT
    assert upstream.attributes is not None
    assert upstream.attributes["http.response.status_code"] == 201

    orders_request = _one(spans, "orders", "POST /orders", upstream)
    assert orders_request.kind is SpanKind.SERVER
    created_published = _one(spans, "orders", "order.created publish", orders_request)
    assert created_published.kind is SpanKind.PRODUCER

    reserved = _one(spans, "inventory", "order.created process", created_published)
    assert reserved.kind is SpanKind.CONSUMER
    assert reserved.attributes is not None
    assert reserved.attributes["realtimeorder.order_id"] == order_id
    confirmed_published = _one(spans, "inventory", "order.confirmed publish", reserved)

    confirmed = _one(spans, "orders", "order.confirmed process", confirmed_published)
    push = _one(spans, "orders", "after-commit push_order", confirmed)
    assert push.attributes is not None
    assert push.attributes["messaging.system"] == "socket.io"
    assert push.attributes["realtimeorder.order_id"] == order_id

    notified = _one(spans, "notifications", "order.confirmed process", confirmed_published)
    delivery = _one(spans, "notifications", f"{PUSH_QUEUE} publish", notified)
    assert delivery.kind is SpanKind.PRODUCER
    sent = _one(spans, "push-worker", f"{PUSH_QUEUE} process", delivery)
    assert sent.kind is SpanKind.CONSUMER
    assert sent.attributes is not None
    assert sent.attributes["realtimeorder.outcome"] == "sent"

    # order.created is notified on its own branch of the same trace, unless notifications
    # consumed the confirmation first and suppressed it as stale (the topics are independent).
    notified_created = _one(spans, "notifications", "order.created process", created_published)
    assert notified_created.attributes is not None
    if notified_created.attributes["realtimeorder.outcome"] == "notified":
        _one(
            spans,
            "push-worker",
            f"{PUSH_QUEUE} process",
            _one(spans, "notifications", f"{PUSH_QUEUE} publish", notified_created),
        )
    else:
        assert notified_created.attributes["realtimeorder.outcome"] == "stale"


async def test_a_caller_s_traceparent_is_continued_by_the_gateway(
    platform: TracedPlatform,
) -> None:
    trace_id = uuid.uuid4().hex
    response = await platform.http.get(
        f"{platform.gateway_url}/orders",
        headers={
            **platform.user().headers,
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
        },
    )
    assert response.status_code == 200, response.text
    spans = [
        s
        for s in platform.spans.get_finished_spans()
        if format(s.context.trace_id, "032x") == trace_id
    ]
    gateway = [s for s in spans if service_of(s) == "gateway" and s.kind is SpanKind.SERVER]
    assert len(gateway) == 1
    assert gateway[0].parent is not None
    assert gateway[0].parent.span_id == 0x00F067AA0BA902B7
    upstream = _one(spans, "gateway", "GET 127.0.0.1", gateway[0])
    # The gateway's own span, not the caller's, is what the service continues.
    _one(spans, "orders", "GET /orders", upstream)


async def test_an_order_whose_trace_is_not_recorded_passes_it_on_without_a_span(
    platform: TracedPlatform,
) -> None:
    """A caller's trace sampled out (flags 00) is continued by no span in any service, and
    its context still reaches the last hop: the notification of the order's confirmation
    stores it, after the gateway, orders, its relay, inventory and its relay."""
    product = await platform.product()
    trace_id = uuid.uuid4().hex
    response = await platform.http.post(
        f"{platform.gateway_url}/orders",
        json={"items": [{"productId": product, "quantity": 1}], "shippingAddress": ADDRESS},
        headers={**platform.user().headers, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"},
    )
    assert response.status_code == 201, response.text
    order_id = str(response.json()["id"])

    async def confirmation_pushed() -> list[str] | None:
        sent = [
            m["request"]["reference"]
            for m in platform.sink.messages("push")
            if m["request"].get("data", {}).get("orderId") == order_id
            and "confirmed" in m["request"]["data"].get("eventType", "")
        ]
        return sent or None

    references = await eventually(confirmation_pushed, within=60, what="the confirmation's push")
    async with await psycopg.AsyncConnection.connect(platform.conninfo) as conn:
        cursor = await conn.execute(
            "SELECT d.trace_context FROM notifications.deliveries d"
            " JOIN notifications.notifications n ON n.id = d.notification_id"
            " WHERE n.order_id = %s AND n.event_type = 'order.confirmed' AND d.channel = 'push'",
            (order_id,),
        )
        (stored,) = await cursor.fetchall()
    traceparent = stored[0]["traceparent"]
    assert traceparent.split("-")[1] == trace_id
    assert traceparent.endswith("-00")

    spans = platform.spans.get_finished_spans()
    assert not [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
    # A hop that lost the context would have begun a recorded trace of its own for the order.
    marks = {order_id, *references}
    assert not [s for s in spans if marks & {str(v) for v in (s.attributes or {}).values()}]
