"""Drive concurrent customers through the gateway and measure the order pipeline end to end.

    .venv/bin/python -m bench [--rates 20,100,200,400] [--seconds 15] [--customers 16]

Needs the platform running (`make up`; started here when the gateway does not answer). It logs
in as ADMIN_EMAIL / ADMIN_PASSWORD when set, else creates a benchmark admin with
`realtimeorder create-admin` against the stack's database. For each
arrival rate it places orders open-loop for the given time while every customer listens on
Socket.IO, and measures create -> CONFIRMED pushed. Then it measures the cached product list
through the gateway with wrk. Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bench import cpu
from services.kit.runtime import wait_event

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise RuntimeError(f"HTTP {self.status}: {self.body}")


class Http:
    """The load generator's one pooled aiohttp session (httpx's pool costs far more CPU here)."""

    def __init__(self, base: str) -> None:
        self.session = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Reply:
        async with self.session.post(path, json=json, headers=headers) as response:
            body = await response.json(content_type=None)
            return Reply(response.status, dict(response.headers), body)

    async def close(self) -> None:
        await self.session.close()


@dataclass
class RateResult:
    rate: int
    seconds: float
    placed: int = 0
    create_errors: int = 0
    confirmed: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    create_ms: list[float] = field(default_factory=list)
    throughput: float = 0.0
    cpu_ms_per_order: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per settled order of each process of the stack (bench/cpu.py)."""


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def ensure_stack(base: str) -> None:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/readyz") as response:
            if response.status == 200:
                return
    except aiohttp.ClientError:
        pass
    print("gateway not answering: running make up", flush=True)
    await asyncio.to_thread(subprocess.run, ["make", "up"], cwd=ROOT, check=True)


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


async def customer(client: Http, base: str, n: int) -> tuple[str, socketio.AsyncClient]:
    email = f"bench-{uuid.uuid4().hex[:10]}-{n}@example.com"
    password = uuid.uuid4().hex
    (
        await client.post(
            "/auth/register", json={"email": email, "password": password, "name": f"Bench {n}"}
        )
    ).raise_for_status()
    response = await login(client, email, password)
    response.raise_for_status()
    token = str(response.body["accessToken"])
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(base, auth={"token": token}, transports=["websocket"])
    return token, sio


async def run_rate(
    client: Http,
    customers: list[tuple[str, socketio.AsyncClient]],
    products: list[str],
    rate: int,
    seconds: float,
) -> RateResult:
    result = RateResult(rate=rate, seconds=seconds)
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    finished = asyncio.Event()
    placing_over = False

    def on_update(data: dict[str, Any]) -> None:
        order_id = data.get("orderId")
        if (
            order_id in sent
            and order_id not in done
            and data.get("status") in ("CONFIRMED", "FAILED")
        ):
            done[order_id] = time.perf_counter()
            if data["status"] == "CONFIRMED":
                result.confirmed += 1
                result.latencies_ms.append((done[order_id] - sent[order_id]) * 1000)
            else:
                result.failed += 1
            if len(done) >= result.placed and placing_over:
                finished.set()

    for _, sio in customers:
        sio.on("order.updated", on_update)

    async def place(i: int) -> None:
        token, _ = customers[i % len(customers)]
        started = time.perf_counter()
        try:
            response = await client.post(
                "/orders",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "items": [{"productId": products[i % len(products)], "quantity": 1}],
                    "shippingAddress": {
                        "name": "Bench",
                        "line1": "1 Main St",
                        "city": "Berlin",
                        "postalCode": "10115",
                        "country": "DE",
                    },
                },
            )
        except (aiohttp.ClientError, TimeoutError):
            result.create_errors += 1
            return
        if response.status not in (200, 201):
            result.create_errors += 1
            return
        result.create_ms.append((time.perf_counter() - started) * 1000)
        sent[str(response.body["id"])] = started

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
    await asyncio.gather(*tasks)
    result.placed = len(sent)
    placing_over = True
    if len(done) < result.placed:
        await wait_event(finished, 30)
    if done:
        result.throughput = len(done) / (max(done.values()) - begin)
    result.cpu_ms_per_order = cpu.per_unit_ms(cpu_before, cpu.sample(roots), len(done))
    return result


def wrk_products(base: str, seconds: int) -> dict[str, str]:
    if not shutil.which("wrk"):
        return {"error": "wrk is not installed (scripts/install.sh installs it)"}
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", f"{base}/inventory/products"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\n\s+50%\s+(\S+)", out)
    p99 = re.search(r"\n\s+99%\s+(\S+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps.group(1) if rps else "?",
        "p50": p50.group(1) if p50 else "?",
        "p99": p99.group(1) if p99 else "?",
        "errors": non2xx.group(1) if non2xx else "0",
    }


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


def write_report(command: str, results: list[RateResult], products: dict[str, str]) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        "",
        f"Command: `{command}`",
        "",
        "## Orders end to end (POST /orders through the gateway -> CONFIRMED pushed on Socket.IO)",
        "",
        "| offered rate (orders/s) | placed | confirmed | create errors | sustained orders/s "
        "| p50 ms | p95 ms | p99 ms | POST p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.rate} | {r.placed} | {r.confirmed} | {r.create_errors} | {r.throughput:.1f} "
            f"| {percentile(r.latencies_ms, 50):.1f} | {percentile(r.latencies_ms, 95):.1f} "
            f"| {percentile(r.latencies_ms, 99):.1f} | {percentile(r.create_ms, 99):.1f} |"
        )
    lines += cpu_table(results)
    lines += [
        "",
        "## Cached product list (GET /inventory/products through the gateway, wrk -t2 -c64)",
        "",
        "| req/s | p50 | p99 | non-2xx |",
        "|---|---|---|---|",
        f"| {products.get('rps', products.get('error'))} | {products.get('p50', '-')} "
        f"| {products.get('p99', '-')} | {products.get('errors', '-')} |",
        "",
    ]
    analysis = REPORT.with_name("benchmarks-analysis.md")
    if analysis.exists():
        lines += [analysis.read_text()]
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


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
    return lines


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument(
        "--base", default=f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '3000')}"
    )
    parser.add_argument("--rates", default="20,100,200,400")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--customers", type=int, default=12)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args(argv)
    await ensure_stack(args.base)
    client = Http(args.base)
    try:
        token = await admin_token(client)
        products = await bench_products(client, token)
        customers = [await customer(client, args.base, n) for n in range(args.customers)]
        results = []
        for rate in (int(r) for r in args.rates.split(",")):
            print(f"offering {rate} orders/s for {args.seconds:.0f}s", flush=True)
            result = await run_rate(client, customers, products, rate, args.seconds)
            results.append(result)
            print(
                f"  placed {result.placed}, confirmed {result.confirmed}, "
                f"{result.throughput:.1f}/s, p50 {percentile(result.latencies_ms, 50):.1f} ms, "
                f"p99 {percentile(result.latencies_ms, 99):.1f} ms; CPU ms/order: "
                + ", ".join(
                    f"{name} {ms:.2f}"
                    for name, ms in sorted(result.cpu_ms_per_order.items(), key=lambda i: -i[1])
                ),
                flush=True,
            )
            await asyncio.sleep(2)
        for _, sio in customers:
            await sio.disconnect()
    finally:
        await client.close()
    product_list = wrk_products(args.base, args.wrk_seconds)
    print(f"product list: {product_list}", flush=True)
    command = "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else "")
    write_report(command, results, product_list)
    print(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
