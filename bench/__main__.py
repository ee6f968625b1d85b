"""Drive concurrent customers through the gateway and measure the order pipeline end to end.

    .venv/bin/python -m bench [--rates 20,100,200,400] [--seconds 15] [--warmup-seconds 60]
        [--customers 10] [--profile-rate N] [--profile-seconds 20]
        [--overload-rate N] [--overload-seconds 60] [--recovery-seconds 20]
        [--wrk-seconds 10] [--sockets 10000] [--socket-idle-seconds 10] [--socket-order-rate 10]
        [--socket-order-seconds 10]

Needs the platform running (`make up`; started here when the gateway does not answer). It logs in as
ADMIN_EMAIL / ADMIN_PASSWORD when set, else creates a benchmark admin with `realtimeorder
create-admin` against the stack's database. After a warm-up at the lowest rate (not reported; a
minute, because a freshly started Kafka's JIT compiler spent 190 ms of CPU a second during the first
40 s at 20 orders/s and 11 by the third minute), for each arrival rate, once the stack is quiet
again, it places orders open-loop for the given time while every customer listens on Socket.IO
(bench/live_client.py), and measures create -> CONFIRMED pushed, each process's CPU per order
(bench/cpu.py) and, at the highest rate, what each service handled per order, from its own
counters (bench/handled.py). Then the profiled run: the best
sustained rate (or --profile-rate) for --profile-seconds while py-spy samples every Python program
(bench/profile.py) and PostgreSQL counts each statement (bench/statements.py), which says where each
program's CPU per order goes. Then the overload run (bench/overload.py): twice the best sustained
rate (or --overload-rate) for --overload-seconds, then the lowest rate while latency recovers. Then
the product list with wrk (bench/products.py): through the gateway, revalidating with its ETag, and
straight to inventory. Last the socket-scale run (bench/sockets.py): --sockets connections held on
the gateway while one user's orders are timed; it goes last, after which the gateway closes them all
(about 5 s of its CPU). Results go to docs/benchmarks.md. A stack started here traces 1% of the
orders (TRACE_SAMPLE_RATIO, through OTEL_TRACES_SAMPLER), as production would at these rates; the
report says how the stack it measured traced.

Creates that are not answered 201 are counted by cause (status and problem type, or "timeout"),
so a refusal says why. The stack `make up` starts runs with APP_ENV=development, where the
per-user holding limits (MAX_OPEN_ORDERS_PER_USER, MAX_OPEN_UNITS_PER_PRODUCT) are off; against
a stack with them on, a handful of customers holding thousands of open orders would be refused
`409 holding-limit`. Customers are registered once and reused from the run folder, as auth takes
REGISTER_ADDRESS_MAX_ATTEMPTS registrations an hour from one address. `503 overloaded` is the
gateway's admission control shedding what the machine does not sustain at that rate.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import socketio
import uvloop
from yarl import URL

from bench import (
    cpu,
    handled,
    overload,
    perf_profile,
    procfs,
    products,
    profile,
    sockets,
    stages,
    statements,
)
from bench.live_client import LiveClient, PushClient
from bench.settlements import Settlements
from bench.stats import percentile, problem_cause
from devstack.stack import StackConfig, run_dir
from services.kit import http1, tracing
from services.kit.limits import raise_open_files_limit
from services.kit.live import OrjsonCodec
from services.kit.runtime import wait_event

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
CUSTOMERS = run_dir() / "bench-customers.json"
TRACE_SAMPLE_RATIO = "0.01"
CREATE_TIMEOUT_SECONDS = 30.0
# Below the gateway's own keep-alive (HTTP_KEEP_ALIVE_SECONDS, 75 s), so the generator drops an
# idle connection before the gateway closes it under a create.
CREATE_KEEPALIVE_SECONDS = 60.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise RuntimeError(f"HTTP {self.status}: {self.body}")


class Http:
    """The load generator's client: the creates, sent at the run's rate, go through the lean
    HTTP/1.1 client the gateway uses upstream (services/kit/http1.py: about 30 µs of CPU per
    create against aiohttp's 150); everything else through one pooled aiohttp session (httpx's
    pool costs far more CPU here)."""

    def __init__(self, base: str) -> None:
        self.session = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        url = URL(base)
        self.host, self.port = url.raw_host or "", url.port or 80
        self.creates = http1.Client(limit=200, keepalive_seconds=CREATE_KEEPALIVE_SECONDS)

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Reply:
        async with self.session.post(path, json=json, headers=headers) as response:
            return Reply(response.status, dict(response.headers), await _json(response))

    async def create(self, token: str, product: str) -> tuple[int, dict[str, str], Any]:
        """Place an order of one unit of `product`, with a fresh Idempotency-Key as the web
        app sends: (status, headers in lower case, body). ConnectionError or TimeoutError when
        no answer came."""
        async with asyncio.timeout(CREATE_TIMEOUT_SECONDS):
            answer = await self.creates.request(
                "POST",
                self.host,
                self.port,
                "/orders",
                [
                    ("Authorization", f"Bearer {token}"),
                    ("Idempotency-Key", str(uuid.uuid4())),
                    ("Content-Type", "application/json"),
                ],
                orjson.dumps(
                    {"items": [{"productId": product, "quantity": 1}], "shippingAddress": ADDRESS}
                ),
            )
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in answer.headers
        }
        try:
            return answer.status, headers, orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return answer.status, headers, None  # not JSON: a proxy's or a server's error page

    async def status(self, token: str, order_id: str) -> str | None:
        """The order's status read back, or None if it could not be read."""
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.get(f"/orders/{order_id}", headers=headers) as response:
            body = await _json(response)
        return str(body.get("status")) if isinstance(body, dict) else None

    async def text(self, path: str) -> str:
        async with self.session.get(path) as response:
            return await response.text()

    async def close(self) -> None:
        self.creates.close()
        await self.session.close()


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None  # not JSON: a proxy's or a server's plain error page


ADDRESS = {
    "name": "Bench",
    "line1": "1 Main St",
    "city": "Berlin",
    "postalCode": "10115",
    "country": "DE",
}


@dataclass
class RateResult:
    rate: int
    seconds: float
    placed: int = 0
    create_errors: int = 0
    errors_by_status: dict[str, int] = field(default_factory=dict)
    """Creates not answered 201, by status code ("timeout", "connection" when none came)."""
    confirmed: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    throughput: float = 0.0
    cpu_ms_per_order: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per settled order of each process of the stack (bench/cpu.py)."""
    handled: handled.Counts = field(default_factory=dict)
    """What each service handled per settled order (bench/handled.py)."""
    notified: stages.Notified = field(default_factory=stages.Notified)
    """The notifications and deliveries made per confirmed order (bench/stages.py)."""
    stages: stages.Breakdown = field(default_factory=stages.Breakdown)
    core_seconds: float | None = None
    """One core's loop (`core_seconds`) on the quiet stack just before the rate: how fast the
    machine was for this rate, which may differ from the run's start and end."""
    notified_after: float | str = "not measured"
    """Seconds from the last CONFIRMED push until the notifications service had recorded
    every confirmed order's notification (it runs at a lower priority on the development
    stack, so under load it catches up later), or why there is no figure."""

    def refused(self, cause: str) -> None:
        self.create_errors += 1
        self.errors_by_status[cause] = self.errors_by_status.get(cause, 0) + 1


async def ensure_stack(base: str) -> None:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as response:
            if response.status == 200:
                return
    except aiohttp.ClientError:
        pass
    # A stack started here traces the share of orders production would (TRACE_SAMPLE_RATIO);
    # a stack already running is measured as it is, and the report says how it traces.
    env = dict(os.environ)
    if "OTEL_TRACES_SAMPLER" not in env:
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = env.get("TRACE_SAMPLE_RATIO", TRACE_SAMPLE_RATIO)
    print("gateway not answering: running make up", flush=True)
    await asyncio.to_thread(subprocess.run, ["make", "up"], cwd=ROOT, env=env, check=True)


async def settle() -> None:
    """Wait (bounded) until the stack is idle again, so a run does not measure the last one's
    queued work."""
    waited, busy = await asyncio.to_thread(cpu.wait_quiet, cpu.program_pids())
    print(f"  stack quiet after {waited:.0f}s (last {busy:.0%} of a core)", flush=True)


def tracing_of_stack() -> str:
    """How the running stack traces, from the gateway's environment (where traces start)."""
    pid = sockets.gateway_pid()
    if pid is None:
        return "unknown (no gateway process)"
    env = procfs.environ(pid)
    if env is None:
        return "unknown (its environment is not readable)"
    return describe_tracing(env)


def describe_tracing(env: Mapping[str, str]) -> str:
    """What a service with environment `env` traces (services/kit/tracing.py's variables)."""
    if not tracing.exporting(env):
        return "off"
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    if sampler in {"parentbased_traceidratio", "traceidratio"}:
        return f"{float(env.get('OTEL_TRACES_SAMPLER_ARG', '1')):.0%} of orders ({sampler})"
    return "every order" if sampler.endswith("always_on") else sampler


async def admin_token(client: Http) -> str:
    """Log in as ADMIN_EMAIL/ADMIN_PASSWORD, or create a benchmark admin with the CLI."""
    email = os.environ.get("ADMIN_EMAIL", "")
    password = os.environ.get("ADMIN_PASSWORD", "")
    if not (email and password):
        email, password = f"bench-admin-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
        env = {**os.environ, "ADMIN_PASSWORD": password}
        if "POSTGRES_PORT" in os.environ:
            env["DB_PORT"] = os.environ["POSTGRES_PORT"]
        await asyncio.to_thread(
            subprocess.run,
            [str(ROOT / ".venv" / "bin" / "realtimeorder"), "create-admin", email],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    response = await login(client, email, password)
    if response.status != 200:
        sys.exit(f"admin login failed ({response.status}): set ADMIN_EMAIL/ADMIN_PASSWORD")
    return str(response.body["accessToken"])


async def login(client: Http, email: str, password: str) -> Reply:
    """Log in, waiting out the per-address login rate limit (every customer comes from here)."""
    while True:
        response = await client.post("/auth/login", json={"email": email, "password": password})
        if response.status != 429:
            return response
        wait = int(response.headers.get("retry-after", "5"))
        print(f"login rate limit reached: waiting {wait}s", flush=True)
        await asyncio.sleep(wait)


async def bench_products(client: Http, token: str, count: int = 4) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    run = uuid.uuid4().hex[:6]
    for n in range(count):
        response = await client.post(
            "/inventory/products",
            headers=headers,
            json={
                "sku": f"BENCH-{run}-{n}",
                "name": f"Bench item {n}",
                "description": "Created by the benchmark",
                "price": "9.99",
                "currency": "EUR",
                "initialStock": 10_000_000,
            },
        )
        response.raise_for_status()
        ids.append(str(response.body["id"]))
    return ids


class RegistrationRefused(RuntimeError):
    """Auth's per-address registration limit (10 an hour by default) is reached."""


def saved_customers() -> list[dict[str, str]]:
    """Customers an earlier run registered on this stack (auth limits registrations per address,
    so each run registering its own would soon be refused for an hour)."""
    if not CUSTOMERS.exists():
        return []
    saved: list[dict[str, str]] = json.loads(CUSTOMERS.read_text())
    return saved


async def customer(
    client: Http, base: str, n: int, saved: list[dict[str, str]]
) -> tuple[str, LiveClient]:
    if n < len(saved):
        email, password = saved[n]["email"], saved[n]["password"]
        response = await login(client, email, password)
        if response.status == 401:
            # Saved before the stack's database was reset: the same customer, registered again.
            await register(client, email, password, n)
            response = await login(client, email, password)
    else:
        email = f"bench-{uuid.uuid4().hex[:10]}-{n}@example.com"
        password = uuid.uuid4().hex
        await register(client, email, password, n)
        saved.append({"email": email, "password": password})
        CUSTOMERS.parent.mkdir(exist_ok=True)
        CUSTOMERS.write_text(json.dumps(saved))
        response = await login(client, email, password)
    response.raise_for_status()
    token = str(response.body["accessToken"])
    live = LiveClient()
    await live.connect(client.session, base, token)
    return token, live


async def register(client: Http, email: str, password: str, n: int) -> None:
    registered = await client.post(
        "/auth/register", json={"email": email, "password": password, "name": f"Bench {n}"}
    )
    if registered.status == 429:
        raise RegistrationRefused(f"auth refuses more registrations: {registered.body}")
    registered.raise_for_status()


async def run_rate(
    client: Http,
    customers: Sequence[tuple[str, PushClient]],
    products: list[str],
    rate: int,
    seconds: float,
) -> RateResult:
    result = RateResult(rate=rate, seconds=seconds)
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    # Wall-clock ends of each confirmed order, to cut at the database's timestamps.
    walls: dict[str, tuple[float, float]] = {}
    sent_wall: dict[str, float] = {}
    finished = asyncio.Event()
    placing_over = False

    def settle(order_id: str, status: str, at: float, at_wall: float) -> None:
        done[order_id] = at
        if status == "CONFIRMED":
            result.confirmed += 1
            walls[order_id] = (sent_wall[order_id], at_wall)
            result.latencies_ms.append((at - sent[order_id]) * 1000)
        else:
            result.failed += 1
        if len(done) >= result.placed and placing_over:
            finished.set()

    settlements: Settlements[str] = Settlements(settle)
    for _, sio in customers:
        sio.on("order.updated", settlements.on_update)

    async def place(i: int) -> None:
        token, _ = customers[i % len(customers)]
        started, started_wall = time.perf_counter(), time.time()
        try:
            status, _, body = await client.create(token, products[i % len(products)])
        except TimeoutError:
            result.refused("timeout")
            return
        except (aiohttp.ClientError, ConnectionError):
            result.refused("connection")
            return
        if status not in (200, 201) or not isinstance(body, dict):
            result.refused(problem_cause(status, body))
            return
        result.create_ms.append((time.perf_counter() - started) * 1000)
        order_id = str(body["id"])
        sent_wall[order_id] = started_wall
        sent[order_id] = started
        settlements.placed(order_id, order_id)

    config = StackConfig.load(run_dir())
    counted_before = await asyncio.to_thread(handled.read, config)
    roots = cpu.program_pids()
    cpu_before = cpu.sample(roots)
    tasks = []
    begin = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(place(i)))
    await overload.creates_out(tasks)
    result.placed = len(sent)
    placing_over = True
    if len(done) < result.placed:
        await wait_event(finished, 30)
    if done:
        result.throughput = len(done) / (max(done.values()) - begin)
        # The CPU is read once the notifications caught up, so deferred work counts too.
        result.notified_after = await asyncio.to_thread(
            stages.notifications_caught_up,
            list(walls),
            max(done.values()),
            NOTIFIED_WAIT_SECONDS,
        )
    result.cpu_ms_per_order = cpu.per_unit_ms(cpu_before, cpu.sample(roots), len(done))
    counted_after = await asyncio.to_thread(handled.read, config)
    result.handled = handled.per_order(counted_before, counted_after, len(done))
    result.stages = await asyncio.to_thread(stages.breakdown, walls)
    result.notified = await asyncio.to_thread(stages.notified_per_order, list(walls))
    return result


NOTIFIED_WAIT_SECONDS = 120.0


def load_average() -> str:
    loadavg = Path("/proc/loadavg")
    return loadavg.read_text().split()[0] if loadavg.exists() else "unknown"


CALIBRATION_ADDITIONS = 20_000_000
EXPIRY_HORIZON_SECONDS = 600.0
"""How far ahead the report counts earlier orders' reservations that will expire: about as long
as a run with the default arguments."""


def core_seconds() -> float:
    """Seconds one core took for a fixed pure-Python loop, best of three: how fast the machine
    was at that moment. A shared or throttled machine gives the same build slower figures; this
    says how much, so runs of different hours or days compare."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(CALIBRATION_ADDITIONS):
            total += number
        best = min(best, time.perf_counter() - started)
    return best


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s+(\d+)", meminfo.read_text())
        mem = f", {int(found.group(1)) // 1024 // 1024} GiB RAM" if found else ""
    return (
        f"{os.cpu_count()} cores ({model}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load generator, platform and all backing servers "
        "on the same machine"
    )


def write_report(
    load_before: str,
    expiring: int | None,
    speed: tuple[float, float],
    command: str,
    warmup_seconds: float,
    results: list[RateResult],
    profiled: ProfiledRun | None,
    overloaded: overload.OverloadResult | None,
    held: sockets.SocketScaleResult | None,
    product_list: products.ListReport,
) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Every figure below is written by the command named under it (`make bench` runs it); "
        "none is typed by hand, and a new run replaces them.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        "",
        f"Load average (1 min) when the run started: {load_before}; anything above the stack's "
        "own load means other work shared the cores and the figures are lower than the "
        "build can do.",
        "",
        f"Reservations of earlier orders due to expire while the run went on (within "
        f"{EXPIRY_HORIZON_SECONDS // 60:.0f} minutes of its start): "
        f"{'unknown' if expiring is None else f'{expiring:,}'}. Each expiry cancels its order "
        "through every service, work on the same cores that no rate offered: for figures of "
        "the build alone, start a run when no earlier run's reservations are left "
        "(RESERVATION_TTL_SECONDS after the last order, 15 minutes by default).",
        "",
        f"One core's speed: {CALIBRATION_ADDITIONS:,} additions in a Python loop took "
        f"{speed[0]:.3f} s when the run started and {speed[1]:.3f} s when it ended (best of "
        "three; the stack idle), and just before each rate as the orders table says. The same "
        "build's figures scale with it: compare it before comparing runs or rates.",
        "",
        f"Command: `{command}`",
        "",
        f"Tracing: {tracing_of_stack()}. A stack the bench starts itself traces "
        f"TRACE_SAMPLE_RATIO of the orders (default {TRACE_SAMPLE_RATIO}); every traced order "
        "costs a span in each service it crosses (docs/benchmarks-analysis.md).",
        "",
        "## Orders end to end (POST /orders through the gateway -> CONFIRMED pushed on Socket.IO)",
        "",
        (
            f"After {warmup_seconds:.0f} s of orders at the lowest rate (not reported), each rate "
            "starts once the stack is quiet again (the previous rate's queued work done)."
            if warmup_seconds > 0
            else "Each rate starts once the stack is quiet again (no warm-up run)."
        ),
        "",
    ]
    lines += orders_table(results)
    refused = [r for r in results if r.errors_by_status]
    if refused:
        lines += ["", "Create errors by cause (status and problem type, or no answer):", ""]
        lines += [f"- {r.rate}/s: {errors_text(r)}" for r in refused]
    lines += stages.table([(r.rate, r.stages) for r in results])
    lines += cpu_table(results)
    if results:
        top = max(results, key=lambda r: r.rate)
        lines += handled.table(top.rate, top.handled, top.cpu_ms_per_order)
    if profiled is not None:
        lines += profile.table(profiled.profiles)
        lines += perf_profile.table(profiled.machine, profiled.profiles)
        lines += statements.table(profiled.statements, profiled.profiles.settled)
    if overloaded is not None:
        lines += overload.table(overloaded)
    if held is not None:
        lines += sockets.table(held)
    lines += products.table(product_list)
    lines.append("")
    analysis = REPORT.with_name("benchmarks-analysis.md")
    if analysis.exists():
        lines += [analysis.read_text()]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


def notified_text(after: float | str) -> str:
    return f"{after:.1f}" if isinstance(after, float) else after


def errors_text(result: RateResult) -> str:
    causes = sorted(result.errors_by_status.items(), key=lambda item: -item[1])
    return ", ".join(f"{cause} x{count}" for cause, count in causes)


def orders_table(results: list[RateResult]) -> list[str]:
    """The orders table: one row per offered rate."""
    lines = [
        "| offered rate (orders/s) | placed | confirmed | create errors | sustained orders/s "
        "| p50 ms | p95 ms | p99 ms | POST p99 ms | notified, s after the last push "
        "| one core's loop just before, s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        loop = "-" if r.core_seconds is None else f"{r.core_seconds:.3f}"
        lines.append(
            f"| {r.rate} | {r.placed} | {r.confirmed} | {r.create_errors} | {r.throughput:.1f} "
            f"| {percentile(r.latencies_ms, 50):.1f} | {percentile(r.latencies_ms, 95):.1f} "
            f"| {percentile(r.latencies_ms, 99):.1f} | {percentile(r.create_ms, 99):.1f} "
            f"| {notified_text(r.notified_after)} | {loop} |"
        )
    return lines


def cpu_table(results: list[RateResult]) -> list[str]:
    """CPU milliseconds per settled order, per process and offered rate (the stack's own
    processes and their children, from /proc; everything else on the machine is left out)."""
    names = sorted({name for r in results for name in r.cpu_ms_per_order})
    if not names:
        return []
    lines = [
        "",
        "### CPU per order (ms of CPU per settled order, from /proc)",
        "",
        "| process | " + " | ".join(f"{r.rate}/s" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    ranked = sorted(names, key=lambda n: -max(r.cpu_ms_per_order.get(n, 0.0) for r in results))
    for name in ranked:
        cells = " | ".join(f"{r.cpu_ms_per_order.get(name, 0.0):.2f}" for r in results)
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(f"{sum(r.cpu_ms_per_order.values()):.2f}" for r in results)
    lines.append(f"| **all** | {totals} |")
    lines += [
        "",
        "What the notifications service made per confirmed order at each rate: the order's"
        " creation is notified only when its confirmation was not recorded first, which"
        " depends on the order Kafka handed the two events over in, and the notifications"
        " service's, the push worker's and the gateway's CPU per order follow it.",
        "",
        "| per confirmed order | " + " | ".join(f"{r.rate}/s" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for label, kind in (
        ("in-app notifications: order.created", "order.created"),
        ("in-app notifications: order.confirmed", "order.confirmed"),
        ("deliveries handed to a channel", None),
    ):
        lines.append(f"| {label} | " + " | ".join(_notified_cell(r, kind) for r in results) + " |")
    return lines


def _notified_cell(result: RateResult, event_type: str | None) -> str:
    """A rate's in-app notifications of `event_type` per order, its deliveries for None."""
    notified = result.notified
    if notified.unavailable is not None:
        return str(notified.unavailable)
    per_order = (
        notified.deliveries_per_order
        if event_type is None
        else notified.per_order.get(event_type, 0.0)
    )
    return f"{per_order:.2f}"


async def socket_scale(
    args: argparse.Namespace,
    client: Http,
    customers: Sequence[tuple[str, PushClient]],
    product_ids: list[str],
) -> sockets.SocketScaleResult:
    """Hold --sockets connections, of users of their own or else of every customer but the
    first, and time the first's orders meanwhile (bench/sockets.py)."""
    tokens = sockets.synthetic_tokens(args.sockets)
    if not tokens:
        tokens = [token for token, _ in customers[1:]] or [customers[0][0]]
    result = sockets.SocketScaleResult(asked=args.sockets, users=len(tokens))
    result.generator_files_limit = raise_open_files_limit()
    pid = sockets.gateway_pid()

    def gateway_rss_kib() -> int:
        return (procfs.rss_kib(pid) if pid is not None else None) or 0

    limit = procfs.files_limit(pid) if pid is not None else None
    result.gateway_files_limit = limit or "unknown"
    result.rss_before_kib = gateway_rss_kib()
    session, held, holders = await sockets.hold_connections(args.base, tokens, args.sockets, result)
    # The generator's own full collections would visit every held connection's objects and
    # stall the loop that times the owner's updates: they are kept out of its collections.
    gc.collect()
    gc.freeze()
    try:
        result.rss_after_kib = gateway_rss_kib()
        print(
            f"  {result.connected} connections open in {result.connect_seconds:.1f}s, "
            f"gateway RSS {result.rss_before_kib // 1024} -> {result.rss_after_kib // 1024} MiB",
            flush=True,
        )
        # The owner connects once the others are up: while thousands connect, the gateway may
        # be too busy to ping an older connection in time, and its client gives up.
        owner = customers[0][0]
        owner_sio = socketio.AsyncClient(reconnection=False, json=OrjsonCodec)
        await owner_sio.connect(args.base, auth={"token": owner}, transports=["websocket"])
        try:
            if pid is not None and args.socket_idle_seconds > 0:
                result.gateway_idle_cpu_ms_per_s = await sockets.idle_cpu_ms_per_second(
                    pid, args.socket_idle_seconds
                )
            collections = await gateway_gc_pauses(client)
            async with sockets.LoopDelays(result.generator_delays_ms):
                result.orders = await run_rate(
                    client,
                    [(owner, owner_sio)],
                    product_ids,
                    args.socket_order_rate,
                    args.socket_order_seconds,
                )
            result.gateway_collections = sockets.collections_between(
                collections, await gateway_gc_pauses(client)
            )
        finally:
            await owner_sio.disconnect()
        result.alive_at_end = sum(h.alive for h in held)
    finally:
        await sockets.release(session, held, holders)
        gc.unfreeze()
    return result


async def gateway_gc_pauses(client: Http) -> dict[str, dict[str, float]]:
    """The gateway's collector pauses so far, from its /metrics (empty if it has none)."""
    try:
        return sockets.gc_pause_buckets(await client.text("/metrics"))
    except aiohttp.ClientError:
        return {}


@dataclass
class ProfiledRun:
    profiles: profile.Profiles
    statements: statements.Statements
    machine: perf_profile.MachineProfile


async def profiled_run(
    args: argparse.Namespace,
    client: Http,
    customers: Sequence[tuple[str, PushClient]],
    product_ids: list[str],
    results: list[RateResult],
) -> ProfiledRun:
    """Orders at --profile-rate (the best sustained rate) while py-spy samples every Python
    program (bench/profile.py), perf every core (bench/perf_profile.py) and PostgreSQL counts each
    statement (bench/statements.py). Its own run: the profilers' CPU and the counting stay out
    of the measured rates."""
    rate = args.profile_rate or max(1, round(max((r.throughput for r in results), default=1.0)))
    await settle()
    print(f"profiling: {rate} orders/s for {args.profile_seconds:.0f}s", flush=True)
    profiles = profile.Profiles(rate=rate, seconds=args.profile_seconds)
    not_counted = await asyncio.to_thread(statements.reset)
    roots = cpu.program_pids()
    recording = profile.Recording(profile.python_programs(roots), args.profile_seconds)
    whole = perf_profile.Recording(roots, args.profile_seconds)
    run = await run_rate(client, customers, product_ids, rate, args.profile_seconds)
    profiles.programs, profiles.unavailable = await asyncio.to_thread(recording.finish)
    profiles.cpu_ms_per_order = run.cpu_ms_per_order
    profiles.settled = run.confirmed + run.failed
    cores = await asyncio.to_thread(whole.finish)
    counted = (
        statements.Statements(unavailable=not_counted)
        if not_counted
        else await asyncio.to_thread(statements.read)
    )
    profiled = ProfiledRun(profiles, counted, cores)
    print("\n".join(profile.table(profiles)), flush=True)
    print("\n".join(perf_profile.table(cores, profiles)), flush=True)
    print("\n".join(statements.table(counted, profiles.settled)), flush=True)
    return profiled


def overload_rate(args: argparse.Namespace, results: list[RateResult]) -> int:
    """The burst's rate: as asked, else twice the best rate the rate runs sustained."""
    if args.overload_rate:
        return int(args.overload_rate)
    sustained = max((r.throughput for r in results), default=0.0)
    return max(1, round(2 * sustained))


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument(
        "--base", default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '3000')}"
    )
    parser.add_argument("--rates", default="20,100,200,400")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=60,
        help="at the lowest rate before the measured ones, not reported; 0 skips",
    )
    parser.add_argument("--customers", type=int, default=10)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument(
        "--overload-rate", type=int, default=0, help="default: twice the best sustained rate"
    )
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=20,
        help="the profiled run (py-spy and pg_stat_statements) after the measured rates; 0 skips",
    )
    parser.add_argument(
        "--profile-rate", type=int, default=0, help="default: the best sustained rate"
    )
    parser.add_argument("--overload-seconds", type=float, default=60, help="0 skips the run")
    parser.add_argument(
        "--recovery-seconds", type=float, default=20, help="at the lowest rate, after the burst"
    )
    parser.add_argument(
        "--recovered-ms",
        type=float,
        default=150,
        help="p99 create -> CONFIRMED counted as recovered (the 400 orders/s target's p99)",
    )
    parser.add_argument(
        "--sockets", type=int, default=10_000, help="connections of the socket-scale run; 0 skips"
    )
    parser.add_argument(
        "--socket-idle-seconds",
        type=float,
        default=10,
        help="the gateway's CPU is read while the connections are held idle this long; 0 skips",
    )
    parser.add_argument("--socket-order-rate", type=int, default=10)
    parser.add_argument("--socket-order-seconds", type=float, default=10)
    args = parser.parse_args(argv)
    load_before = load_average()
    await ensure_stack(args.base)
    expiring = await asyncio.to_thread(stages.expiring_reservations, EXPIRY_HORIZON_SECONDS)
    speed_before = core_seconds()
    client = Http(args.base)
    overloaded = None
    held = None
    profiled = None
    try:
        token = await admin_token(client)
        product_ids = await bench_products(client, token)
        saved = saved_customers()
        customers = []
        for n in range(args.customers):
            try:
                customers.append(await customer(client, args.base, n, saved))
            except RegistrationRefused as refused:
                if not customers:
                    raise
                print(f"{refused}: going on with {len(customers)} customers", flush=True)
                break
        rates = [int(r) for r in args.rates.split(",")]
        if args.warmup_seconds > 0:
            # A freshly started stack is still warming up (imports, connection pools, the
            # JIT of the broker); the first measured rate should not pay for it.
            print(f"warming up: {min(rates)} orders/s for {args.warmup_seconds:.0f}s", flush=True)
            await run_rate(client, customers, product_ids, min(rates), args.warmup_seconds)
        results = []
        for rate in rates:
            # Each rate starts on a quiet stack, not on the last one's queued work.
            await settle()
            speed_now = core_seconds()
            print(f"offering {rate} orders/s for {args.seconds:.0f}s", flush=True)
            result = await run_rate(client, customers, product_ids, rate, args.seconds)
            result.core_seconds = speed_now
            results.append(result)
            if result.stages.unavailable:
                print(f"  no stage breakdown: {result.stages.unavailable}", flush=True)
            else:
                print(
                    "  stage p50 ms: "
                    + ", ".join(
                        f"{name} {percentile(ms, 50):.1f}" for name, ms in result.stages.ms.items()
                    ),
                    flush=True,
                )
            print(
                f"  placed {result.placed}, confirmed {result.confirmed}, "
                f"{result.throughput:.1f}/s, p50 {percentile(result.latencies_ms, 50):.1f} ms, "
                f"p99 {percentile(result.latencies_ms, 99):.1f} ms; "
                f"notified {notified_text(result.notified_after)} s after"
                f" (per order: created {_notified_cell(result, 'order.created')},"
                f" confirmed {_notified_cell(result, 'order.confirmed')}); "
                + (f"create errors: {errors_text(result)}; " if result.errors_by_status else "")
                + "CPU ms/order: "
                + ", ".join(
                    f"{name} {ms:.2f}"
                    for name, ms in sorted(result.cpu_ms_per_order.items(), key=lambda i: -i[1])
                ),
                flush=True,
            )
        if args.profile_seconds > 0:
            profiled = await profiled_run(args, client, customers, product_ids, results)
        if args.overload_seconds > 0:
            burst = overload_rate(args, results)
            print(
                f"overload: {burst} orders/s for {args.overload_seconds:.0f}s, then "
                f"{min(rates)} orders/s for {args.recovery_seconds:.0f}s",
                flush=True,
            )
            overloaded = await overload.run_overload(
                client,
                customers,
                product_ids,
                rate=burst,
                seconds=args.overload_seconds,
                recovery_rate=min(rates),
                recovery_seconds=args.recovery_seconds,
                recovered_ms=args.recovered_ms,
            )
            print("\n".join(overload.table(overloaded)), flush=True)
        # Before the socket-scale run, which leaves the gateway closing thousands of
        # connections (and holding their memory) for a while after it; and once the
        # notifications and analytics of the runs above are through.
        await settle()
        product_list = await asyncio.to_thread(products.measure, args.base, args.wrk_seconds)
        print("\n".join(products.table(product_list)), flush=True)
        if args.sockets > 0:
            print(f"socket scale: holding {args.sockets} connections", flush=True)
            held = await socket_scale(args, client, customers, product_ids)
            print("\n".join(sockets.table(held)), flush=True)
        for _, sio in customers:
            await sio.disconnect()
    finally:
        await client.close()
    speed = (speed_before, core_seconds())
    command = "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else "")
    write_report(
        load_before,
        expiring,
        speed,
        command,
        args.warmup_seconds,
        results,
        profiled,
        overloaded,
        held,
        product_list,
    )
    print(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    # The generator shares the cores with the stack it measures: on uvloop, as the services
    # run, it takes about a tenth less CPU per order than on the standard event loop.
    uvloop.run(main(sys.argv[1:]))
