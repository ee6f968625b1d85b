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

Handlers do no I/O besides the request itself and log nothing per request, so one process
absorbs the benchmark's delivery rate.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

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


SINK = web.AppKey("sink", Sink)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _invalid(message: str, fields: list[str] | None = None) -> web.Response:
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


def _accept(channel: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        sink = request.app[SINK]
        if sink.token is not None and request.headers.get("Authorization") != (
            f"Bearer {sink.token}"
        ):
            return _json(401, {"error": "unauthorized", "message": "a valid bearer token needed"})
        raw = await request.read()
        faults = sink.faults[channel]
        if faults:
            status = faults.popleft()
            return _json(
                status,
                {"error": "injected_fault", "message": f"the sink was told to answer {status}"},
                {"Retry-After": "1"} if status in (429, 503) else None,
            )
        key = request.headers.get("Idempotency-Key")
        if key:
            replay = sink.answers.get((channel, key))
            if replay is not None:
                return web.Response(
                    body=replay,
                    status=202,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        try:
            payload = orjson.loads(raw)
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
        return web.Response(body=answer, status=202, content_type="application/json")

    return handler


def _channel_parameter(request: web.Request) -> str | None:
    channel = request.query.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise web.HTTPBadRequest(
            text=orjson.dumps(
                {"error": "invalid_request", "message": f"channel is one of {sorted(CHANNELS)}"}
            ).decode(),
            content_type="application/json",
        )
    return channel


async def list_messages(request: web.Request) -> web.Response:
    sink = request.app[SINK]
    channel = _channel_parameter(request)
    try:
        limit = int(request.query.get("limit", sink.capacity * len(CHANNELS)))
    except ValueError:
        return _invalid("limit is a number", ["limit"])
    messages = sink.listed(channel, request.query.get("reference"), max(limit, 0))
    return _json(200, {"messages": messages, "accepted": sink.accepted})


async def forget(request: web.Request) -> web.Response:
    request.app[SINK].reset()
    return web.Response(status=204)


async def add_faults(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
        channel, status, count = body["channel"], int(body["status"]), int(body.get("count", 1))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return _invalid('expected {"channel": "sms"|"push", "status": 400..599, "count": N}')
    if channel not in CHANNELS or not 400 <= status <= 599 or count < 1:
        return _invalid('expected {"channel": "sms"|"push", "status": 400..599, "count": N}')
    faults = request.app[SINK].faults[channel]
    faults.extend([status] * count)
    return _json(200, {"channel": channel, "pending": list(faults)})


async def clear_faults(request: web.Request) -> web.Response:
    for faults in request.app[SINK].faults.values():
        faults.clear()
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.Response:
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


async def page(request: web.Request) -> web.Response:
    sink = request.app[SINK]
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
    return web.Response(text=body, content_type="text/html")


def create_app(*, token: str | None = None, capacity: int = DEFAULT_CAPACITY) -> web.Application:
    app = web.Application()
    app[SINK] = Sink(capacity=capacity, token=token)
    app.router.add_post("/sms", _accept("sms"))
    app.router.add_post("/push", _accept("push"))
    app.router.add_get("/messages", list_messages)
    app.router.add_delete("/messages", forget)
    app.router.add_post("/faults", add_faults)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", page)
    return app


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
    app = create_app(token=args.token, capacity=args.capacity)
    print(f"SMS and push sink on http://{args.host}:{args.port}", flush=True)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=_event_loop(),
        shutdown_timeout=2,
        backlog=1024,
    )


if __name__ == "__main__":
    main()
