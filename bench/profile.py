"""Where each Python program's CPU goes per order: py-spy samples grouped by what runs.

During the profiled run (the best sustained rate of the measured ones, after them; its figures
are in no other table) py-spy records every Python program of the stack at `RATE_HZ` with
`--gil`: a sample is taken only from the thread holding the interpreter, so a thread waiting in
native code without it (librdkafka's poll, a blocking read) is not counted as busy, while
native work done with it (uvloop's socket calls, libpq's sends) is. Each sample is charged to
the library of its innermost Python frame (`category`): the time a service spends in psycopg is
psycopg's, in its own modules its own. A program's shares times its CPU per order from /proc
(bench/cpu.py) give milliseconds per order by category, comparable with the budget of 1.5 ms
of service CPU per order.

py-spy counts a thread as busy while it is ready to run, holding the interpreter, but waiting
for a core; on shared cores that is much of the time, and it is not spread like the CPU: a
process loses its core most often on returning from a call that woke another one (a socket
write). So the table also says how many samples each program's CPU time accounts for against
how many py-spy took, and the shares of the calls that wake others (socket writes, psycopg's
sends) are upper bounds: on 2026-12-04 `perf` put 4% of the gateway's CPU in `write`, where
py-spy had a quarter of its samples in the WebSocket send that calls it.

py-spy needs to read the programs' memory (ptrace): as root, or with
`kernel.yama.ptrace_scope` 0, or CAP_SYS_PTRACE. Without it the report says why there is no
profile. Its own CPU (a few percent of a core at 50 Hz for ten programs) is the generator's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import SUPERVISOR

RATE_HZ = 50
MIN_MS_PER_ORDER = 0.1
"""Programs that spend less per order (auth, the idle workers) are left out of the table."""

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PostgreSQL driver (psycopg)", ("psycopg/", "psycopg_pool/", "psycopg_binary/")),
    ("Kafka client", ("confluent_kafka/", "services/kit/kafka.py")),
    ("RabbitMQ client", ("aio_pika/", "aiormq/", "pamqp/")),
    ("Redis client", ("redis/",)),
    ("Socket.IO and WebSockets", ("socketio/", "engineio/", "websockets/", "wsproto/")),
    (
        "HTTP server and framework",
        (
            "uvicorn/",
            "starlette/",
            "fastapi/",
            "httptools/",
            "h11/",
            "services/kit/web.py",
            "services/kit/front.py",
            "services/kit/request_context.py",
        ),
    ),
    ("HTTP client", ("aiohttp/", "httpx/", "httpcore/", "yarl/", "multidict/", "aiosignal/")),
    ("validation and JSON", ("pydantic/", "pydantic_core/", "orjson/", "json/")),
    ("tracing", ("opentelemetry/", "services/kit/tracing.py")),
    ("logging", ("logging/", "services/kit/logs.py")),
    ("metrics", ("prometheus_client/", "services/kit/metrics.py")),
    ("event loop and socket I/O", ("asyncio/", "uvloop/", "selectors.py", "concurrent/")),
    ("the service's own code", ("services/",)),
)
"""Innermost frame's file prefix -> category, first match wins; the rest is "other"."""
OTHER = "other (standard library and the rest)"


def category(frame: str) -> str:
    """The category of a py-spy frame, `function (path/to/file.py:line)`."""
    location = frame[frame.rfind("(") + 1 :]
    for name, prefixes in CATEGORIES:
        if location.startswith(prefixes):
            return name
    return OTHER


PROJECT_PACKAGES = ("services", "devstack", "bench")


def module_path(path: str) -> str:
    """A source file's path from its package down: `psycopg/waiting.py` for an installed
    library, `asyncio/streams.py` for the standard library, `services/kit/web.py` for ours."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    stdlib = re.search(r"/lib/python3\.\d+/(.+)", path)
    if stdlib:
        return stdlib.group(1)
    for package in PROJECT_PACKAGES:
        at = path.rfind(f"/{package}/")
        if at >= 0:
            return path[at + 1 :]
    return path


def parse_raw(text: str) -> Counter[str]:
    """Samples per innermost frame, `function (package/module.py)`, from py-spy's raw
    (collapsed) output with full file names: one `outer;...;inner count` line per stack."""
    leaves: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        head, _, location = leaf.rpartition(" (")
        path = location.rstrip(")").rsplit(":", 1)[0]
        leaves[f"{head} ({module_path(path)})"] += int(count)
    return leaves


@dataclass
class Profile:
    """One program's samples per innermost frame."""

    leaves: Counter[str] = field(default_factory=Counter)

    @property
    def samples(self) -> int:
        return sum(self.leaves.values())

    def shares(self) -> dict[str, float]:
        """Share of the samples per category."""
        total = self.samples
        by_category: Counter[str] = Counter()
        for frame, count in self.leaves.items():
            by_category[category(frame)] += count
        return {name: count / total for name, count in by_category.items()} if total else {}

    def hottest(self, count: int) -> list[tuple[str, float]]:
        """The innermost frames with the most samples, with their share."""
        total = self.samples
        return [(frame, n / total) for frame, n in self.leaves.most_common(count)] if total else []


@dataclass
class Profiles:
    rate: int = 0
    seconds: float = 0.0
    programs: dict[str, Profile] = field(default_factory=dict)
    cpu_ms_per_order: dict[str, float] = field(default_factory=dict)
    settled: int = 0
    """Orders settled by the profiled run, whose CPU `cpu_ms_per_order` divides."""
    unavailable: str = ""
    """Why there is no profile, if there is none."""


def python_programs(pids: Mapping[str, int]) -> dict[str, int]:
    """The programs (of `cpu.program_pids`) that are Python interpreters, but the supervisor."""
    found = {}
    for name, pid in pids.items():
        if name == SUPERVISOR:
            continue
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:
            continue
        if Path(argv0).name.startswith("python"):
            found[name] = pid
    return found


def py_spy() -> str | None:
    """The py-spy beside this interpreter (the virtualenv's), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """py-spy recording each program for `seconds`, started at once and read by `finish`."""

    def __init__(self, pids: Mapping[str, int], seconds: float) -> None:
        self.seconds = seconds
        self.folder = tempfile.TemporaryDirectory(prefix="bench-profile-")
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.failed = ""
        binary = py_spy()
        if binary is None:
            self.failed = "py-spy is not installed (it is in the dev extra: `make install`)"
            return
        for name, pid in pids.items():
            self.running[name] = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, round(seconds))),
                    "--rate",
                    str(RATE_HZ),
                    "--gil",
                    "--nonblocking",
                    "--full-filenames",
                    "--format",
                    "raw",
                    "--output",
                    str(Path(self.folder.name) / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )

    def finish(self) -> tuple[dict[str, Profile], str]:
        """Wait for every recording: the profiles, and why some are missing ("" if none is)."""
        profiles: dict[str, Profile] = {}
        errors: list[str] = [self.failed] if self.failed else []
        try:
            for name, process in self.running.items():
                try:
                    _, stderr = process.communicate(timeout=self.seconds + 30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    _, stderr = process.communicate()
                output = Path(self.folder.name) / f"{name}.txt"
                if output.exists():
                    profiles[name] = Profile(parse_raw(output.read_text()))
                else:
                    reason = stderr.decode(errors="replace").strip().splitlines()
                    errors.append(f"{name}: {reason[-1] if reason else 'no output'}")
        finally:
            self.folder.cleanup()
        return profiles, "; ".join(errors)


def cpu_samples(result: Profiles, program: str) -> int:
    """The samples `program`'s CPU time in the run would give at `RATE_HZ`: what py-spy would
    take if it counted a program busy only while it runs."""
    cpu_seconds = result.cpu_ms_per_order.get(program, 0.0) * result.settled / 1000
    return round(cpu_seconds * RATE_HZ)


def table(result: Profiles, hottest: int = 3) -> list[str]:
    """The report's section: ms of CPU per order by category and program, and each program's
    hottest functions."""
    lines = [
        "",
        f"### Where the Python programs' CPU goes (py-spy, {result.rate} orders/s offered for "
        f"{result.seconds:.0f} s)",
        "",
    ]
    if result.unavailable and not result.programs:
        return [*lines, f"No profile: {result.unavailable}."]
    ranked = sorted(result.programs, key=lambda name: -result.cpu_ms_per_order.get(name, 0.0))
    ranked = [
        name
        for name in ranked
        if result.programs[name].samples
        and result.cpu_ms_per_order.get(name, 0.0) >= MIN_MS_PER_ORDER
    ]
    lines += [
        "A program's CPU per settled order (from /proc, in the last row) split by the library "
        "of the innermost Python frame of each sample (bench/profile.py); ms per order.",
        "",
        "| category | " + " | ".join(ranked) + " |",
        "|---|" + "---|" * len(ranked),
    ]
    ms = {
        p: {
            c: share * result.cpu_ms_per_order.get(p, 0.0)
            for c, share in result.programs[p].shares().items()
        }
        for p in ranked
    }
    weight = Counter[str]()
    for per_category in ms.values():
        weight.update(per_category)
    for name, _ in weight.most_common():
        cells = " | ".join(f"{ms[p].get(name, 0.0):.2f}" for p in ranked)
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(f"{result.cpu_ms_per_order.get(p, 0.0):.2f}" for p in ranked)
    lines.append(f"| **all (from /proc)** | {totals} |")
    samples = ", ".join(
        f"{p} {result.programs[p].samples:,} ({cpu_samples(result, p):,})" for p in ranked
    )
    lines += [
        "",
        f"Samples taken (and what the program's CPU time accounts for at {RATE_HZ} Hz): "
        f"{samples}. The difference was taken while the program was ready to run but waiting "
        "for a core; those samples fall most on the calls that woke another process, whose "
        "shares here are upper bounds (bench/profile.py).",
        "",
        "Hottest functions (innermost frame, share of the program's samples):",
        "",
    ]
    for name in ranked:
        frames = "; ".join(
            f"`{frame}` {share:.0%}" for frame, share in result.programs[name].hottest(hottest)
        )
        lines.append(f"- {name}: {frames}")
    if result.unavailable:
        lines += ["", f"Not profiled: {result.unavailable}."]
    return lines
