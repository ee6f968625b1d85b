"""The product list under wrk: through the gateway (its copy in memory), revalidating with the
page's ETag (304s), and straight to inventory (its Redis cache), with CPU per read from /proc.

Each run is `wrk -t2 -c64` for the given seconds. The share of 304 answers and of reads the
gateway answered from memory come from the gateway's own counters, read from its /metrics
before and after the run.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from urllib.request import Request, urlopen

from prometheus_client.parser import text_string_to_metric_families

from bench import cpu
from services.registry import service

PATH = "/inventory/products"
WRK_CONNECTIONS = 64
READ_RESULTS = ("hit", "miss", "coalesced", "bypass")
ANSWER_WITHIN_SECONDS = 180


@dataclass
class ListRun:
    name: str
    rps: str = "?"
    p50: str = "?"
    p99: str = "?"
    requests: int = 0
    errors: str = "0"
    not_modified_share: float | None = None
    memory_share: float | None = None
    cpu_ms_per_read: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class ListReport:
    runs: list[ListRun]
    identity_bytes: int = 0
    gzip_bytes: int = 0


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[dict[str, str], bytes]:
    with urlopen(Request(url, headers=headers or {}), timeout=10) as response:  # noqa: S310
        return {k.lower(): v for k, v in response.headers.items()}, response.read()


def _first_answer(url: str, within: float) -> tuple[dict[str, str], bytes]:
    """`_get(url)` once the gateway answers: right after the socket-scale run it is still
    closing thousands of connections, which may take longer than one request's timeout."""
    deadline = time.monotonic() + within
    while True:
        try:
            return _get(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(min(2.0, within / 10))


def _counters(base: str) -> dict[str, float]:
    """The gateway's product-list counters: cache results and 304s."""
    _, text = _get(f"{base}/metrics")
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == "gateway_product_cache_requests_total":
                found[sample.labels["result"]] = sample.value
            elif sample.name == "gateway_product_cache_not_modified_total":
                found["not_modified"] = sample.value
    return found


def _wrk(name: str, url: str, seconds: int, headers: dict[str, str]) -> ListRun:
    command = ["wrk", "-t2", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for header, value in headers.items():
        command += ["-H", f"{header}: {value}"]
    roots = cpu.program_pids()
    before = cpu.sample(roots)
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    after = cpu.sample(roots)

    def find(pattern: str) -> str | None:
        found = re.search(pattern, out)
        return found.group(1) if found else None

    run = ListRun(
        name=name,
        rps=find(r"Requests/sec:\s+([\d.]+)") or "?",
        p50=find(r"\n\s+50%\s+(\S+)") or "?",
        p99=find(r"\n\s+99%\s+(\S+)") or "?",
        requests=int(find(r"(\d+) requests in") or 0),
        errors=find(r"Non-2xx or 3xx responses: (\d+)") or "0",
    )
    run.cpu_ms_per_read = cpu.per_unit_ms(before, after, run.requests)
    return run


def measure(base: str, seconds: int, within: float = ANSWER_WITHIN_SECONDS) -> ListReport:
    """The three runs, and the page's size as JSON and gzipped."""
    if not shutil.which("wrk"):
        error = "wrk is not installed (scripts/install.sh installs it)"
        return ListReport([ListRun("product list", error=error)])
    try:
        headers, body = _first_answer(base + PATH, within=within)
        _, zipped = _get(base + PATH, {"Accept-Encoding": "gzip"})
    except OSError as exc:  # URLError and timeouts are OSErrors
        return ListReport([ListRun("product list", error=f"the gateway did not answer: {exc}")])
    report = ListReport([], identity_bytes=len(body), gzip_bytes=len(zipped))
    if zipped[:2] != b"\x1f\x8b":  # answered without gzip
        report.gzip_bytes = len(gzip.compress(body))
    inventory = f"http://127.0.0.1:{service('inventory').default_port}"
    plans: list[tuple[str, str, bool]] = [("through the gateway", base, False)]
    revalidating = "through the gateway, revalidating (If-None-Match)"
    if headers.get("etag"):
        plans.append((revalidating, base, True))
    else:
        report.runs.append(ListRun(revalidating, error="the list carried no ETag"))
    plans.append(("straight to inventory (its Redis cache)", inventory, False))
    for name, target, revalidate in plans:
        # The tag is taken right before its run: a stock change since the first answer (an
        # expired reservation released, say) gives the page a new one.
        extra = {"If-None-Match": _get(base + PATH)[0].get("etag", "")} if revalidate else {}
        before = _counters(base)
        run = _wrk(name, target + PATH, seconds, extra)
        after = _counters(base)
        delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
        # The gateway's own count of reads is the denominator: wrk leaves out the requests
        # still unanswered when it stops.
        reads = sum(delta.get(result, 0.0) for result in READ_RESULTS)
        if target == base and reads:
            run.not_modified_share = delta.get("not_modified", 0.0) / reads
            run.memory_share = delta.get("hit", 0.0) / reads
        report.runs.append(run)
    return report


def table(report: ListReport) -> list[str]:
    lines = [
        "",
        f"## Product list (GET {PATH}, wrk -t2 -c{WRK_CONNECTIONS})",
        "",
        f"A page of the running stack's catalogue: {report.identity_bytes} bytes of JSON, "
        f"{report.gzip_bytes} bytes gzipped (what a browser accepting gzip receives).",
        "",
        "| run | req/s | p50 | p99 | non-2xx/3xx | 304 share | from memory "
        "| CPU ms per read: gateway | inventory | all |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report.runs:
        if run.error:
            lines.append(f"| {run.name} | {run.error} | | | | | | | | |")
            continue
        share = "-" if run.not_modified_share is None else f"{run.not_modified_share:.0%}"
        memory = "-" if run.memory_share is None else f"{run.memory_share:.0%}"
        ms = run.cpu_ms_per_read
        lines.append(
            f"| {run.name} | {run.rps} | {run.p50} | {run.p99} | {run.errors} | {share} "
            f"| {memory} | {ms.get('gateway', 0.0):.3f} | {ms.get('inventory', 0.0):.3f} "
            f"| {sum(ms.values()):.3f} |"
        )
    lines.append("")
    lines.append(
        "CPU per read counts every process of the stack and the load generator with wrk "
        "(bench/cpu.py)."
    )
    return lines
