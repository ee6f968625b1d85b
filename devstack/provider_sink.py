"""A stand-in for the SMS and push providers: it accepts what the notification workers send,
remembers it, and lists it, the way Mailpit does for email.

    python -m devstack.provider_sink --port 8026 [--token SECRET]

The request shape is the one the workers speak to a real provider:

- `POST /sms` `{"to": "+4930123456", "body": "...", "reference": "<deliveryId>"}`
- `POST /push` `{"userId": "...", "title": "...", "body": "...", "data": {...},
  "reference": "<deliveryId>"}` (`data` is optional)
- `Content-Type: application/json`, `Idempotency-Key: <deliveryId>`, and
  `Authorization: Bearer <token>` (checked only when the sink runs with `--token`).

An accepted message answers `202 {"id": "<sink id>", "status": "accepted"}`. Like a real
provider, a repeated Idempotency-Key (per channel) answers the first answer again, with
`Idempotent-Replayed: true`, and delivers nothing twice. A body that is not a JSON object or
lacks a required field answers `400 {"error": "invalid_request", "message": ..., "fields": [...]}`.

For looking and for tests: `GET /messages?channel=sms|push&reference=...&limit=N` lists the
accepted messages newest first (the last `capacity` per channel are kept; `accepted` counts every
one since the start), `GET /` is the same as a small HTML page, `GET /healthz` answers once
listening. `POST /faults {"channel": "sms", "status": 503, "count": 2}` makes the next two SMS
requests fail with 503 (nothing delivered, no key remembered), for testing retries;
`DELETE /messages` forgets everything.

Handlers do no I/O besides the request itself and log nothing per request, and the HTTP/1.1
server under them is a small protocol over httptools' parser (keep-alive, pipelining, chunked
bodies) rather than a web framework, so one process absorbs the benchmark's delivery rate at
about a third of the CPU per request: a stand-in for a provider the platform would reach over
the network should not take the cores the platform is measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import signal
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import httptools
import orjson

from devstack.ports import HOST

SUMMARY = "A stand-in for the SMS and push providers that lists what it accepted."

CHANNELS: dict[str, tuple[str, ...]] = {
    "sms": ("to", "body", "reference"),
    "push": ("userId", "title", "body", "reference"),
}
"""Each channel's required fields: non-empty strings."""

DEFAULT_CAPACITY = 10_000
IDEMPOTENCY_KEYS_KEPT = 200_000
PAGE_ROWS = 200


@dataclass
class Sink:
    """What the sink has accepted; touched only from the event loop, so no locks."""

    capacity: int = DEFAULT_CAPACITY
    token: str | None = None
    messages: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    answers: OrderedDict[tuple[str, str], bytes] = field(default_factory=OrderedDict)
    faults: dict[str, deque[int]] = field(default_factory=dict)
    sequence: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.messages = {channel: deque(maxlen=self.capacity) for channel in CHANNELS}
        self.accepted = dict.fromkeys(CHANNELS, 0)
        self.answers.clear()
        self.faults = {channel: deque() for channel in CHANNELS}

    def remember(self, channel: str, key: str, answer: bytes) -> None:
        self.answers[(channel, key)] = answer
        if len(self.answers) > IDEMPOTENCY_KEYS_KEPT:
            # The oldest key goes. Not `del answers[next(iter(answers))]` on a dict: its first
            # live entry lies behind every one deleted before, so each eviction would walk
            # further: 10 µs an eviction with 200,000 keys kept, against 0.5 here.
            self.answers.popitem(last=False)

    def listed(
        self, channel: str | None, reference: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first, across both channels unless one is asked for."""
        channels = [channel] if channel else list(CHANNELS)
        found = [
            message
            for name in channels
            for message in reversed(self.messages[name])
            if reference is None or message["request"].get("reference") == reference
        ]
        if len(channels) > 1:
            found.sort(key=lambda message: message["sequence"], reverse=True)
        return found[:limit]


MAX_BODY_BYTES = 1 << 20
"""A request body beyond this is refused with 413 (a push or an SMS is a few hundred bytes)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, orjson.dumps(body), "application/json", headers or {})


def _invalid(message: str, fields: list[str] | None = None) -> Answer:
    return _json(400, {"error": "invalid_request", "message": message, "fields": fields or []})


def _problems(channel: str, payload: dict[str, Any]) -> list[str]:
    """The fields that are missing or not what the channel needs."""
    wrong = [
        name
        for name in CHANNELS[channel]
        if not isinstance(payload.get(name), str) or not payload[name]
    ]
    if channel == "push" and not isinstance(payload.get("data", {}), dict):
        wrong.append("data")
    return wrong


def _accept(channel: str) -> Callable[[Sink, Request], Answer]:
    def handler(sink: Sink, request: Request) -> Answer:
        if sink.token is not None and request.headers.get("authorization") != (
            f"Bearer {sink.token}"
        ):
            return _json(401, {"error": "unauthorized", "message": "a valid bearer token needed"})
        faults = sink.faults[channel]
        if faults:
            status = faults.popleft()
            return _json(
                status,
                {"error": "injected_fault", "message": f"the sink was told to answer {status}"},
                {"Retry-After": "1"} if status in (429, 503) else None,
            )
        key = request.headers.get("idempotency-key")
        if key:
            replay = sink.answers.get((channel, key))
            if replay is not None:
                return Answer(202, replay, "application/json", {"Idempotent-Replayed": "true"})
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _invalid("the body is not JSON")
        if not isinstance(payload, dict):
            return _invalid("the body is not a JSON object")
        wrong = _problems(channel, payload)
        if wrong:
            return _invalid(f"missing or invalid: {', '.join(wrong)}", wrong)
        message_id = f"{channel}_{uuid.uuid4().hex}"
        answer = orjson.dumps({"id": message_id, "status": "accepted"})
        sink.messages[channel].append(
            {
                "id": message_id,
                "channel": channel,
                "receivedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "idempotencyKey": key,
                "sequence": next(sink.sequence),
                "request": payload,
            }
        )
        sink.accepted[channel] += 1
        if key:
            sink.remember(channel, key, answer)
        return Answer(202, answer, "application/json")

    return handler


class _BadChannel(Exception):
    pass


def _channel_parameter(request: Request) -> str | None:
    channel = request.query.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise _BadChannel
    return channel


def list_messages(sink: Sink, request: Request) -> Answer:
    channel = _channel_parameter(request)
    try:
        limit = int(request.query.get("limit", sink.capacity * len(CHANNELS)))
    except ValueError:
        return _invalid("limit is a number", ["limit"])
    messages = sink.listed(channel, request.query.get("reference"), max(limit, 0))
    return _json(200, {"messages": messages, "accepted": sink.accepted})


def forget(sink: Sink, request: Request) -> Answer:
    sink.reset()
    return Answer(204)


def add_faults(sink: Sink, request: Request) -> Answer:
    try:
        body = orjson.loads(request.body)
        channel, status, count = body["channel"], int(body["status"]), int(body.get("count", 1))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _invalid('expected {"channel": "sms"|"push", "status": 400..599, "count": N}')
    if channel not in CHANNELS or not 400 <= status <= 599 or count < 1:
        return _invalid('expected {"channel": "sms"|"push", "status": 400..599, "count": N}')
    faults = sink.faults[channel]
    faults.extend([status] * count)
    return _json(200, {"channel": channel, "pending": list(faults)})


def clear_faults(sink: Sink, request: Request) -> Answer:
    for faults in sink.faults.values():
        faults.clear()
    return Answer(204)


def healthz(sink: Sink, request: Request) -> Answer:
    return _json(200, {"status": "ok"})


def _row(message: dict[str, Any]) -> str:
    request = message["request"]
    recipient = request.get("to") or request.get("userId") or ""
    title = request.get("title")
    text = f"<b>{html.escape(str(title))}</b> {html.escape(str(request.get('body', '')))}"
    cells = (
        html.escape(message["receivedAt"]),
        html.escape(message["channel"]),
        html.escape(str(recipient)),
        text if title else html.escape(str(request.get("body", ""))),
        html.escape(str(request.get("reference", ""))),
        html.escape(message["id"]),
    )
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def page(sink: Sink, request: Request) -> Answer:
    channel = _channel_parameter(request)
    rows = "\n".join(_row(message) for message in sink.listed(channel, None, PAGE_ROWS))
    counts = ", ".join(f"{name}: {count}" for name, count in sink.accepted.items())
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>SMS and push sink</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
td:first-child, td:nth-child(2), td:nth-child(3) {{ white-space: nowrap; }}
</style></head><body>
<h1>SMS and push sink</h1>
<p>Accepted since the start: {counts}. Newest {PAGE_ROWS} below; show
<a href="/">all</a>, <a href="/?channel=sms">SMS</a>, <a href="/?channel=push">push</a>;
as JSON: <a href="/messages">/messages</a>. Refreshes every 5 s.</p>
<table><tr><th>received</th><th>channel</th><th>to</th><th>message</th><th>reference</th>
<th>id</th></tr>
{rows}
</table></body></html>
"""
    return Answer(200, body.encode(), "text/html; charset=utf-8")


Handler = Callable[[Sink, Request], Answer]
ROUTES: dict[str, dict[str, Handler]] = {
    "/sms": {"POST": _accept("sms")},
    "/push": {"POST": _accept("push")},
    "/messages": {"GET": list_messages, "DELETE": forget},
    "/faults": {"POST": add_faults, "DELETE": clear_faults},
    "/healthz": {"GET": healthz},
    "/": {"GET": page},
}


def answer(sink: Sink, request: Request) -> Answer:
    """The sink's answer to `request`: its route's, or 404 / 405 / 400 for a bad channel."""
    methods = ROUTES.get(request.path)
    if methods is None:
        return _json(404, {"error": "not_found", "message": f"no route {request.path}"})
    handler = methods.get("GET" if request.method == "HEAD" else request.method)
    if handler is None:
        return _json(
            405,
            {"error": "method_not_allowed", "message": f"{request.method} {request.path}"},
            {"Allow": ", ".join(methods)},
        )
    try:
        return handler(sink, request)
    except _BadChannel:
        return _invalid(f"channel is one of {sorted(CHANNELS)}", ["channel"])


# --- HTTP/1.1 ---------------------------------------------------------------------------------


class SinkProtocol(asyncio.Protocol):
    """One connection: requests parsed by httptools, each answered as soon as it is complete
    (in order, so pipelined requests are answered in order too)."""

    def __init__(self, sink: Sink, connections: set[SinkProtocol]) -> None:
        self.sink = sink
        self.connections = connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(_json(400, {"error": "invalid_request", "message": "no upgrades"}), False)
        except httptools.HttpParserError:
            self._finish(_json(400, {"error": "invalid_request", "message": "bad HTTP"}), False)

    # httptools' callbacks

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY_BYTES:
            self.body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        if self.size > MAX_BODY_BYTES:
            self._finish(_json(413, {"error": "too_large", "message": "body too large"}), False)
            return
        url = httptools.parse_url(self.url)
        method = self.parser.get_method().decode("ascii")
        query = dict(parse_qsl(url.query.decode("latin-1"))) if url.query else {}
        request = Request(
            method, url.path.decode("latin-1"), query, self.headers, b"".join(self.body)
        )
        found = answer(self.sink, request)
        self._finish(found, keep_alive, head=method == "HEAD")

    def _finish(self, found: Answer, keep_alive: bool, *, head: bool = False) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        lines = [f"HTTP/1.1 {found.status} {_reason(found.status)}"]
        if found.content_type is not None:
            lines.append(f"Content-Type: {found.content_type}")
        lines.extend(f"{name}: {value}" for name, value in found.headers.items())
        if found.status not in (204, 304):
            lines.append(f"Content-Length: {len(found.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport.write(
            head_bytes if head or found.status in (204, 304) else head_bytes + found.body
        )
        if not keep_alive:
            transport.close()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


@dataclass
class Listening:
    """A sink serving, and its open connections (closed with it)."""

    server: asyncio.Server
    connections: set[SinkProtocol]

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        await self.server.wait_closed()


async def serve(sink: Sink, host: str, port: int) -> Listening:
    """The sink listening on (`host`, `port`; 0 picks a free port)."""
    connections: set[SinkProtocol] = set()
    server = await asyncio.get_running_loop().create_server(
        lambda: SinkProtocol(sink, connections), host, port, backlog=1024
    )
    return Listening(server, connections)


@asynccontextmanager
async def serving(
    *, token: str | None = None, capacity: int = DEFAULT_CAPACITY
) -> AsyncIterator[str]:
    """A sink on a free loopback port for the block; yields its base URL."""
    listening = await serve(Sink(capacity=capacity, token=token), HOST, 0)
    try:
        yield f"http://{HOST}:{listening.port}"
    finally:
        await listening.close()


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # installed with uvicorn[standard]; about twice the requests per second
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.provider_sink", description=SUMMARY)
    add_arguments(parser)
    run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN (default: any)")
    parser.add_argument(
        "--capacity", type=int, default=DEFAULT_CAPACITY, help="messages kept per channel"
    )


def run(args: argparse.Namespace) -> None:
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_run(args))
    finally:
        loop.close()


async def _run(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, then close the listener and every connection."""
    sink = Sink(capacity=args.capacity, token=args.token)
    listening = await serve(sink, args.host, args.port)
    print(f"SMS and push sink on http://{args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await listening.close()


if __name__ == "__main__":
    main()
