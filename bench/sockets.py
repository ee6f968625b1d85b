"""The socket-scale run: many authenticated Socket.IO connections on the gateway at once, the
gateway's memory per connection, and how fast an order update reaches its owner meanwhile.

The held connections speak Engine.IO 4 / Socket.IO 5 over one shared aiohttp session (a
python-socketio client each would cost the generator far more memory and CPU than the gateway
spends on them): open the WebSocket, send the namespace connect with the access token, answer
the server's pings. Each belongs to a user of its own, as in production: auth registers only
REGISTER_ADDRESS_MAX_ATTEMPTS users an hour from one address, so on the development stack the
bench signs access tokens for synthetic users with the stack's own token key (the run folder's
token-signing.pem, which only the local stack has). The gateway verifies and checks each
token as any other. Without that key (a stack elsewhere) the connections share the tokens of the
bench's customers but the first, and the report says how many users they share; then every
push to one of those users (their notifications, say) goes to thousands of sockets, and the
gateway's Redis listener sends one push after another, so the owner's updates queue behind
those fan-outs. The first customer, the owner, keeps its one python-socketio connection and
places orders at a low rate while all the others are held; the latency is one push among N
idle connections.

The generator's own loop also times the owner's updates, so once the connections are open the
bench freezes its heap (`gc.freeze`: its full collections no longer visit the held connections'
objects) and reports how late that loop woke a 10 ms timer while the orders ran (`LoopDelays`),
with the gateway's garbage collections meanwhile, from its `python_gc_pause_seconds`.

Before the orders, the gateway's CPU is read from /proc while the connections are only held
(`idle_cpu_ms_per_second`): what keeping them costs by itself, Engine.IO's pings and pongs and
its watch over the clients.

Memory per connection is the growth of the gateway's resident memory while they connect: on a
gateway that held as many before, memory it freed stays with the process and the growth reads
near zero, so it counts on a freshly started gateway (`make down && make up`).

Each connection is a file descriptor on both ends: the generator raises its own RLIMIT_NOFILE to
the hard limit, and the report gives the gateway's limit (from /proc), which caps the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from bench import cpu, procfs
from bench.stats import percentile
from devstack.stack import run_dir
from services.kit.keys import SigningKey
from services.kit.settings import ServiceSettings
from services.kit.tokens import Principal, issue_access_token

if TYPE_CHECKING:
    from bench.__main__ import RateResult

CONNECT_CONCURRENCY = 100
CONNECT_TIMEOUT_SECONDS = 30.0


@dataclass
class SocketScaleResult:
    asked: int
    users: int
    connected: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    connect_seconds: float = 0.0
    alive_at_end: int = 0
    gateway_files_limit: str = "unknown"
    generator_files_limit: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    orders: RateResult | None = None
    generator_delays_ms: list[float] = field(default_factory=list)
    """How late the generator's event loop woke `LoopDelays`' timer while the orders ran."""
    gateway_idle_cpu_ms_per_s: float | None = None
    """The gateway's CPU while the connections were only held, before the orders."""
    gateway_collections: dict[str, tuple[int, str]] = field(default_factory=dict)
    """The gateway's garbage collections while the orders ran, by generation: how many, and
    the histogram bucket the longest fell in (`collections_between`)."""

    @property
    def kib_per_connection(self) -> float:
        if not self.connected:
            return float("nan")
        return (self.rss_after_kib - self.rss_before_kib) / self.connected


def synthetic_tokens(count: int) -> list[str]:
    """Access tokens of `count` users of their own, signed with the development stack's key;
    none when this machine has no such key."""
    key_file = run_dir() / "token-signing.pem"
    if not key_file.exists():
        return []
    key = SigningKey.from_pem(key_file.read_text())
    settings = ServiceSettings()
    run = uuid.uuid4().hex[:8]
    return [
        issue_access_token(
            settings,
            key,
            Principal(f"bench-socket-{run}-{n}", f"socket-{n}@example.com", "USER"),
        )
        for n in range(count)
    ]


def gateway_pid() -> int | None:
    return cpu.program_pids().get("gateway")


class HeldSocket:
    """One idle, authenticated Socket.IO connection that answers pings until told to stop."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session = session
        self.url = url
        self.token = token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.alive = False

    async def open(self) -> str | None:
        """Connect and join the default namespace; None when accepted, else why not."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                self.ws = await self.session.ws_connect(self.url, heartbeat=None)
                opened = await self.ws.receive_str()
                if not opened.startswith("0"):
                    return "no engine.io open"
                await self.ws.send_str("40" + json.dumps({"token": self.token}))
                while True:
                    answer = await self.ws.receive_str()
                    if answer.startswith("40"):
                        self.alive = True
                        return None
                    if answer.startswith("44"):
                        return "refused"
                    if answer == "2":
                        await self.ws.send_str("3")
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, TypeError, ConnectionError) as error:
            return type(error).__name__

    async def hold(self) -> None:
        """Answer pings until the connection closes or the task is cancelled."""
        assert self.ws is not None
        try:
            # aiohttp answers WebSocket pings itself (autoping); these are Engine.IO's.
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT and message.data == "2":
                    await self.ws.send_str("3")
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.alive = False

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()


async def idle_cpu_ms_per_second(pid: int, seconds: float) -> float | None:
    """CPU milliseconds per second of the process tree of `pid` over the next `seconds`, read
    as the report's other CPU figures are (`cpu.sample`); None if the process is gone by then."""
    roots = {"process": pid}
    before = cpu.sample(roots)
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    after = cpu.sample(roots)
    if procfs.cpu(pid) is None:
        return None
    return (after["process"] - before["process"]) * 1000 / (time.perf_counter() - started)


async def hold_connections(
    base: str, tokens: list[str], count: int, result: SocketScaleResult
) -> tuple[aiohttp.ClientSession, list[HeldSocket], list[asyncio.Task[None]]]:
    """Open `count` connections round-robin over `tokens`, `CONNECT_CONCURRENCY` at a time."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=True),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS),
    )
    url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    sockets = [HeldSocket(session, url, tokens[i % len(tokens)]) for i in range(count)]
    holders: list[asyncio.Task[None]] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(held: HeldSocket) -> None:
        async with gate:
            why = await held.open()
        if why is None:
            result.connected += 1
            holders.append(asyncio.create_task(held.hold()))
        else:
            result.refused[why] = result.refused.get(why, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(open_one(held) for held in sockets))
    result.connect_seconds = time.perf_counter() - started
    return session, sockets, holders


async def release(
    session: aiohttp.ClientSession, sockets: list[HeldSocket], holders: list[asyncio.Task[None]]
) -> None:
    for task in holders:
        task.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    await asyncio.gather(*(held.close() for held in sockets), return_exceptions=True)
    await session.close()


class LoopDelays:
    """Samples how late this process's event loop wakes a timer, every `interval` seconds while
    the block runs: the delay the generator itself adds to a latency it times, since the same
    loop answers the held connections' Engine.IO pings."""

    def __init__(self, samples: list[float], interval: float = 0.01) -> None:
        self.samples = samples
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopDelays:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _sample(self) -> None:
        while True:
            due = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            self.samples.append(max(time.perf_counter() - due, 0.0) * 1000)


GC_BUCKET = re.compile(
    r'^python_gc_pause_seconds_bucket\{generation="(\d)",le="([^"]+)"\} ([0-9.e+]+)$'
)


def gc_pause_buckets(metrics_text: str) -> dict[str, dict[str, float]]:
    """A process's `python_gc_pause_seconds` histogram from its /metrics text (services/kit/
    metrics.py): generation -> bucket bound -> collections so far."""
    buckets: dict[str, dict[str, float]] = {}
    for line in metrics_text.splitlines():
        match = GC_BUCKET.match(line)
        if match:
            generation, bound, count = match.groups()
            buckets.setdefault(generation, {})[bound] = float(count)
    return buckets


def collections_between(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, tuple[int, str]]:
    """Per generation, the collections between two samples and the smallest bucket bound that
    holds them all (the longest pause is at most that); nothing for a generation without any."""
    between: dict[str, tuple[int, str]] = {}
    for generation, counts in sorted(after.items()):
        earlier = before.get(generation, {})
        total = int(counts.get("+Inf", 0.0) - earlier.get("+Inf", 0.0))
        if total <= 0:
            continue
        bound = next(
            le
            for le in sorted(counts, key=lambda b: float("inf") if b == "+Inf" else float(b))
            if counts[le] - earlier.get(le, 0.0) >= total
        )
        between[generation] = (total, bound)
    return between


def table(result: SocketScaleResult) -> list[str]:
    refused = ", ".join(f"{why} x{n}" for why, n in result.refused.items()) or "0"
    lines = [
        "",
        f"## Socket-scale run ({result.asked} authenticated Socket.IO connections held on the "
        "gateway, then orders placed for one of their users)",
        "",
        "| | value |",
        "|---|---|",
        f"| connections asked / accepted | {result.asked} / {result.connected} |",
        f"| not accepted | {refused} |",
        f"| users they belong to | {result.users} |",
        f"| time to open them all | {result.connect_seconds:.1f} s |",
        f"| still open after the orders | {result.alive_at_end} |",
        f"| gateway resident memory before / with them | {result.rss_before_kib // 1024} MiB / "
        f"{result.rss_after_kib // 1024} MiB |",
        f"| gateway memory per connection | {result.kib_per_connection:.1f} KiB |",
        f"| open-files limit: gateway / generator | {result.gateway_files_limit} / "
        f"{result.generator_files_limit} |",
    ]
    if result.gateway_idle_cpu_ms_per_s is not None:
        lines.append(
            "| gateway CPU while they are only held (pings, pongs, the watch over them) | "
            f"{result.gateway_idle_cpu_ms_per_s:.0f} ms per second |"
        )
    orders = result.orders
    if orders is not None:
        push = orders.stages.ms.get("push", [])
        lines += [
            f"| orders placed meanwhile ({orders.rate}/s for {orders.seconds:.0f} s) / "
            f"confirmed | {orders.placed} / {orders.confirmed} |",
            f"| order update to its owner, after the orders consumer's commit: p50 / p99 ms "
            f"| {percentile(push, 50):.1f} / {percentile(push, 99):.1f} |",
            f"| POST -> CONFIRMED pushed: p50 / p99 ms | {percentile(orders.latencies_ms, 50):.1f}"
            f" / {percentile(orders.latencies_ms, 99):.1f} |",
        ]
    if result.gateway_collections:
        collections = ", ".join(
            f"generation {generation}: {count}, each <= {bound} s"
            for generation, (count, bound) in result.gateway_collections.items()
        )
        lines.append(f"| the gateway's garbage collections meanwhile | {collections} |")
    delays = result.generator_delays_ms
    if delays:
        lines.append(
            "| the generator's own event loop meanwhile, late to wake a 10 ms timer: p99 / max ms"
            f" | {percentile(delays, 99):.1f} / {max(delays):.1f} |"
        )
    return lines
