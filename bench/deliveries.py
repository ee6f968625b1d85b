"""Measure notification deliveries per second, per channel, on the running stack.

    .venv/bin/python -m bench.deliveries [--count 6000] [--channels email,sms,push]

Needs `make up` (the notifications service, its relay, the three workers, Mailpit and the SMS
and push sink). For each channel it writes `--count` pending deliveries straight into the
notifications schema, as the consumer would (one notification each, in batches of 500), then
times until every one is `sent`: that is the relay publishing with confirms, RabbitMQ, the
worker claiming, rendering, sending to the local receiver (SMTP to Mailpit, HTTP to the sink),
recording and acking. The workers' `notifications_worker_stage_seconds_total` before and after
give the time per delivery of each stage. Results are appended to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from devstack import servers
from devstack.stack import DATABASE, DB_PASSWORD, StackConfig, run_dir
from services.notifications.domain import Channel, EventType
from services.notifications.messages import NotificationMessage, TemplateData
from services.notifications.topology import WORK_QUEUES

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
STAGES = ("claim", "send", "record", "publish", "ack")
BATCH = 500


def _recipient(channel: Channel, n: int, user_id: str) -> str:
    if channel is Channel.EMAIL:
        return f"bench-{n}@example.org"
    if channel is Channel.SMS:
        return f"+4930{n:07d}"
    return user_id


def _messages(channel: Channel, count: int, run: str) -> list[NotificationMessage]:
    """One message per delivery; each names its notification, order and user too."""
    now = datetime.now(UTC)
    messages = []
    for n in range(count):
        order_id = str(uuid.uuid4())
        user_id = f"bench-{run}-{n % 100}"
        data = TemplateData(
            order_id=order_id,
            short_order_id=order_id[:8],
            status="CONFIRMED",
            version=2,
            occurred_at=now,
            title="Order confirmed",
            body=f"Your order {order_id[:8]} is confirmed.",
        )
        message = NotificationMessage(
            delivery_id=uuid.uuid4(),
            notification_id=uuid.uuid4(),
            event_id=uuid.uuid4(),
            channel=channel,
            event_type=EventType.CONFIRMED,
            order_id=order_id,
            user_id=user_id,
            recipient=_recipient(channel, n, user_id),
            created_at=now,
            data=data,
        )
        messages.append(message)
    return messages


def _insert(conn: psycopg.Connection[Any], messages: list[NotificationMessage]) -> None:
    with conn.cursor() as cursor:
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            cursor.executemany(
                """
                INSERT INTO notifications (id, user_id, order_id, event_id, event_type,
                                           order_version, title, body, data)
                VALUES (%s, %s, %s, %s, 'order.confirmed', 2, 'Order confirmed', 'bench', '{}')
                """,
                [(m.notification_id, m.user_id, m.order_id, m.event_id) for m in chunk],
            )
            cursor.executemany(
                """
                INSERT INTO deliveries (id, notification_id, channel, status, recipient, queue,
                                        payload)
                VALUES (%s, %s, %s, 'pending', %s, %s, %s)
                """,
                [
                    (
                        m.delivery_id,
                        m.notification_id,
                        str(m.channel),
                        m.recipient,
                        WORK_QUEUES[m.channel],
                        m.to_bytes(),
                    )
                    for m in chunk
                ],
            )
            cursor.execute("SELECT pg_notify('deliveries_notifications', '')")
            conn.commit()


def _stage_seconds(port: int, channel: Channel) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    pattern = re.compile(
        r'^notifications_worker_stage_seconds_total\{channel="(\w+)",stage="(\w+)"\} (\S+)$'
    )
    for line in text.splitlines():
        match = pattern.match(line)
        if match and match.group(1) == str(channel):
            found[match.group(2)] = float(match.group(3))
    return found


async def measure(config: StackConfig, channel: Channel, count: int) -> dict[str, Any]:
    conninfo = servers.postgres_conninfo(config.ports["postgres"], DB_PASSWORD, DATABASE)
    run = uuid.uuid4().hex[:6]
    messages = _messages(channel, count, run)
    ids = [m.delivery_id for m in messages]
    worker_port = config.workers[str(channel)]
    before = _stage_seconds(worker_port, channel)
    with psycopg.connect(conninfo, options="-c search_path=notifications") as conn:
        started = time.perf_counter()
        _insert(conn, messages)
        inserted = time.perf_counter() - started
        while True:
            sent = conn.execute(
                "SELECT count(*) FROM deliveries WHERE id = ANY(%s) AND status = 'sent'", (ids,)
            ).fetchone()
            conn.commit()
            assert sent is not None
            if sent[0] >= count:
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"{channel}: only {sent[0]} of {count} sent after 600 s")
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
    after = _stage_seconds(worker_port, channel)
    per_delivery = {
        stage: (after.get(stage, 0.0) - before.get(stage, 0.0)) / count * 1000 for stage in STAGES
    }
    return {
        "channel": str(channel),
        "count": count,
        "seconds": elapsed,
        "rate": count / elapsed,
        "insert_seconds": inserted,
        "stages_ms": per_delivery,
    }


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "",
        f"## Notification deliveries ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, `python -m bench.deliveries`)",
        "",
        "Deliveries written as pending rows, timed until every one is `sent` (relay with "
        "confirms, RabbitMQ, worker, local receiver). Stage times are batch time per delivery "
        "summed over the worker's four concurrent batches (so they can add up to more than "
        "1/rate).",
        "",
        "| channel | deliveries | seconds | deliveries/s | "
        + " | ".join(f"{s} ms" for s in STAGES)
        + " |",
        "|---|---|---|---|" + "---|" * len(STAGES),
    ]
    for r in results:
        stages = " | ".join(f"{r['stages_ms'][s]:.3f}" for s in STAGES)
        lines.append(
            f"| {r['channel']} | {r['count']} | {r['seconds']:.1f} | {r['rate']:.0f} | {stages} |"
        )
    return "\n".join(lines) + "\n"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.deliveries")
    parser.add_argument("--count", type=int, default=6000)
    parser.add_argument("--channels", default="email,sms,push")
    parser.add_argument("--no-report", action="store_true", help="print only")
    args = parser.parse_args(argv)
    config = StackConfig.load(run_dir())
    if config is None or not config.workers:
        raise SystemExit("the stack is not running with its workers: make up first")
    results = []
    for name in args.channels.split(","):
        result = await measure(config, Channel(name), args.count)
        print(
            f"{name}: {result['count']} in {result['seconds']:.1f} s = {result['rate']:.0f}/s;"
            " per delivery (ms): " + ", ".join(f"{s} {result['stages_ms'][s]:.3f}" for s in STAGES)
        )
        results.append(result)
    text = report(results)
    if not args.no_report:
        with REPORT.open("a") as out:
            out.write(text)
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
