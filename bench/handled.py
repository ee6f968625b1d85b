"""What each Python service handled per settled order, from the services' own counters.

Each service's /metrics is read before and after a rate: the HTTP requests it served, the
gateway's requests to the services behind it, the Kafka events it consumed and published, the
live pushes it published through Redis, the RabbitMQ messages it published and the deliveries
a channel worker settled. The differences, divided by the orders the rate settled, are the
items each service handled per order; set beside its CPU per order (bench/cpu.py), they give
the CPU per item: how the CPU an order costs splits into the hops it crosses.

The gateway counts no Socket.IO packet of its own; the live pushes it relays are the ones the
other services published (each reaches the gateway through Redis and goes out to the sockets
in its rooms), so its row counts those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import StackConfig, worker_program

GATEWAY = "gateway"
BUDGET_MS = 1.5
"""The CPU per created order the Python services are to spend at most
(docs/benchmarks-analysis.md)."""
PUSHES = "live pushes published"
KINDS: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("requests served", "http_requests_total", {}),
    ("upstream requests", "gateway_upstream_requests_total", {}),
    ("events consumed", "events_consumed_total", {}),
    ("events published", "events_published_total", {}),
    (PUSHES, "live_pushes_total", {"outcome": "published"}),
    ("RabbitMQ messages published", "rabbitmq_messages_published_total", {}),
    ("deliveries settled", "notifications_worker_deliveries_total", {}),
)
"""What is counted, each as (the report's name, the counter, the labels a sample must have)."""
RELAYED = "live pushes relayed"
"""The gateway's column: what the other services' live pushes published."""
SERVICES = ("gateway", "orders", "inventory", "notifications", "analytics")
WORKERS = ("push",)
"""The channel workers an order's deliveries reach on the development stack (its users ask for
push only)."""
NEGLIGIBLE = 0.005
"""Items per order below this are left out: not the orders' work (a page of products the bench
read)."""
Counts = dict[str, dict[str, float]]
"""Per program (as bench/cpu.py names it), per kind: a counter's value."""


def counted(text: str) -> dict[str, float]:
    """A /metrics text's sums per kind (`KINDS`)."""
    wanted = {name: (kind, labels) for kind, name, labels in KINDS}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            match = wanted.get(sample.name)
            if match is None:
                continue
            kind, labels = match
            if all(sample.labels.get(key) == value for key, value in labels.items()):
                found[kind] = found.get(kind, 0.0) + sample.value
    return found


def ports(config: StackConfig) -> dict[str, int]:
    """The port of each service and channel worker an order reaches, by program name."""
    found = {name: port for name, port in config.services.items() if name in SERVICES}
    for channel in WORKERS:
        if channel in config.workers:
            found[worker_program(channel)] = config.workers[channel]
    return found


def read(config: StackConfig | None, timeout: float = 5.0) -> Counts:
    """Every program's counts now; a program that does not answer is left out."""
    if config is None:
        return {}
    found: Counts = {}
    for program, port in ports(config).items():
        try:
            with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
                found[program] = counted(response.read().decode())
        except OSError:
            continue
    return found


def per_order(before: Counts, after: Counts, orders: int) -> Counts:
    """What each program handled per order between two reads (programs read both times), the
    gateway's relayed pushes included, leaving out kinds under `NEGLIGIBLE` per order; empty
    for no order."""
    if orders <= 0:
        return {}
    handled: Counts = {}
    for program in before.keys() & after.keys():
        kinds = before[program].keys() | after[program].keys()
        handled[program] = {
            kind: (after[program].get(kind, 0.0) - before[program].get(kind, 0.0)) / orders
            for kind in kinds
        }
    if GATEWAY in handled:
        handled[GATEWAY][RELAYED] = sum(
            kinds.get(PUSHES, 0.0) for program, kinds in handled.items() if program != GATEWAY
        )
    return {
        program: {kind: value for kind, value in kinds.items() if value >= NEGLIGIBLE}
        for program, kinds in handled.items()
    }


@dataclass(frozen=True, slots=True)
class Row:
    program: str
    cpu_ms: float
    items: float
    kinds: dict[str, float]

    @property
    def cpu_us_per_item(self) -> float:
        return self.cpu_ms * 1000 / self.items


def rows(handled: Counts, cpu_ms_per_order: Mapping[str, float]) -> list[Row]:
    """One row per program that handled anything (so `items` > 0), the most CPU per order
    first."""
    found = [
        Row(program, cpu_ms_per_order.get(program, 0.0), items, kinds)
        for program, kinds in handled.items()
        if (items := sum(kinds.values())) > 0
    ]
    return sorted(found, key=lambda row: -row.cpu_ms)


def table(rate: int, handled: Counts, cpu_ms_per_order: Mapping[str, float]) -> list[str]:
    """The report's table for one rate: items per order by kind, and CPU per item."""
    found = rows(handled, cpu_ms_per_order)
    if not found:
        return []
    kinds = [kind for kind, _, _ in KINDS if any(kind in row.kinds for row in found)]
    if any(RELAYED in row.kinds for row in found):
        kinds.append(RELAYED)
    lines = [
        "",
        f"### What each service handled per order ({rate} orders/s offered)",
        "",
        "Items per settled order from each service's own counters, read before and after the "
        "rate (bench/handled.py), and the service's CPU per order divided by them.",
        "",
        "| service | CPU ms per order | "
        + " | ".join(kinds)
        + " | items per order | CPU µs per item |",
        "|---|---|" + "---|" * len(kinds) + "---|---|",
    ]
    for row in found:
        cells = " | ".join(f"{row.kinds[k]:.2f}" if k in row.kinds else "-" for k in kinds)
        lines.append(
            f"| {row.program} | {row.cpu_ms:.2f} | {cells} | {row.items:.2f} | "
            f"{row.cpu_us_per_item:.0f} |"
        )
    cpu_ms = sum(row.cpu_ms for row in found)
    items = sum(row.items for row in found)
    lines += [
        f"| **all** | {cpu_ms:.2f} | "
        + " | ".join(f"{sum(row.kinds.get(k, 0.0) for row in found):.2f}" for k in kinds)
        + f" | {items:.2f} | {cpu_ms * 1000 / items:.0f} |",
        "",
        f"At {items:.1f} items an order, a budget of {BUDGET_MS} ms of service CPU per order "
        f"leaves {BUDGET_MS * 1000 / items:.0f} µs for each; these services spent "
        f"{cpu_ms * 1000 / items:.0f}.",
    ]
    return lines
