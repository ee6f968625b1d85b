"""Where the whole machine's CPU goes while orders run: `perf record -a`, by program and by what
runs inside it (the kernel, the Python interpreter, compiled code).

py-spy (bench/profile.py) says which Python library a program is in, but it samples wall time
and cannot see the kernel or the servers that are not Python. perf samples every core at
`RATE_HZ` whatever runs there, so its samples are CPU time: each is charged to the program whose
process tree holds the sampled process (bench/cpu.py's trees: a service, PostgreSQL with its
backends, Kafka's JVM...), and inside a program to the binary or library the sampled
instruction belongs to (`part`): the kernel (system calls, the network stack, scheduling), the
Python interpreter's own executable (bytecode being run), or compiled code (extension modules,
libc, a server's own binary, the JVM's JIT). perf samples an idle core less often than a busy
one here, so the table counts busy samples only, and gives /proc's CPU per order beside perf's
for each program: where the two agree, perf's split can be read as the program's CPU.

perf needs `kernel.perf_event_paranoid` at -1 or CAP_PERFMON (root has both); Debian packages
it as linux-perf (scripts/install.sh). Without it the report says why there is no table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import cpu
from bench.cpu import GENERATOR
from bench.profile import Profiles

RATE_HZ = 499
MIN_MS_PER_ORDER = 0.05
"""Programs that spend less per order are left out of the table (not of its last row)."""
IDLE = "idle"
OTHER = "other (kernel threads, the profilers)"
KERNEL = "kernel"
INTERPRETER = "Python interpreter"
COMPILED = "compiled code"
PARTS = (INTERPRETER, COMPILED, KERNEL)
HEADINGS = {
    INTERPRETER: "in the interpreter",
    COMPILED: "in compiled code",
    KERNEL: "in the kernel",
}
_SAMPLE = re.compile(r"^\s*(\d+)\s+\S+\s+\((.*)\)\s*$")
_KERNEL_OBJECTS = ("[kernel.kallsyms]", "[vdso]", "[unknown]")


@dataclass
class MachineProfile:
    """perf's samples of the profiled run by program and part, or why there are none."""

    samples: dict[str, Counter[str]] = field(default_factory=dict)
    unavailable: str = ""


def part(dso: str) -> str:
    """What a sampled instruction's binary or library is: the kernel, the interpreter, or
    compiled code."""
    if dso in _KERNEL_OBJECTS or dso.startswith("[kernel"):
        return KERNEL
    name = Path(dso).name
    if re.fullmatch(r"python3(\.\d+)?|libpython3\.\d+\.so(\.[\d.]+)?", name):
        return INTERPRETER
    return COMPILED


def parse_script(lines: Iterable[str]) -> Counter[tuple[int, str]]:
    """Samples by (pid, dso) from `perf script -F pid,ip,dso` (pid 0 is an idle core)."""
    counted: Counter[tuple[int, str]] = Counter()
    for line in lines:
        found = _SAMPLE.match(line)
        if found:
            counted[int(found.group(1)), found.group(2)] += 1
    return counted


def owners(roots: Mapping[str, int], parents: Mapping[int, int]) -> dict[int, str]:
    """The program of each pid in a tree of `roots` (bench/cpu.py); this process is the load
    generator."""
    return {**cpu.programs(roots, parents), os.getpid(): GENERATOR}


def by_program(
    counted: Counter[tuple[int, str]], programs: Mapping[int, str]
) -> dict[str, Counter[str]]:
    """The samples of each program by part; idle cores and unknown processes on rows of their
    own."""
    result: dict[str, Counter[str]] = {}
    for (pid, dso), samples in counted.items():
        program = IDLE if pid == 0 else programs.get(pid, OTHER)
        result.setdefault(program, Counter())[part(dso)] += samples
    return result


def _parents() -> dict[int, int]:
    return {pid: ppid for pid, (ppid, _) in cpu.processes().items()}


class Recording:
    """`perf record -a` for `seconds`, started at once and read by `finish`."""

    def __init__(self, roots: Mapping[str, int], seconds: float) -> None:
        self.roots = dict(roots)
        self.seconds = seconds
        self.folder = tempfile.TemporaryDirectory(prefix="bench-perf-")
        self.data = Path(self.folder.name) / "perf.data"
        self.process: subprocess.Popen[bytes] | None = None
        self.failed = ""
        # Processes that end during the run (a database session) are known from the start.
        self.parents = _parents()  # pid -> parent pid
        self.binary = shutil.which("perf")
        if self.binary is None:
            self.failed = "perf is not installed (Debian's linux-perf, scripts/install.sh)"
            return
        sampling = ("-a", "-e", "cpu-clock", "-F", str(RATE_HZ), "-o", str(self.data))
        self.process = subprocess.Popen(
            [self.binary, "record", *sampling, "--", "sleep", str(max(1, round(seconds)))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> MachineProfile:
        """Wait for the recording: samples by program and part, or why there are none."""
        try:
            if self.process is None or self.binary is None:
                return MachineProfile(unavailable=self.failed)
            try:
                _, stderr = self.process.communicate(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                _, stderr = self.process.communicate()
            if self.process.returncode != 0 or not self.data.exists():
                reason = stderr.decode(errors="replace").strip().splitlines()
                return MachineProfile(
                    unavailable=f"perf record failed: {reason[-1] if reason else 'no output'}"
                )
            script = subprocess.run(
                [self.binary, "script", "-i", str(self.data), "-F", "pid,ip,dso"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if script.returncode != 0:
                return MachineProfile(
                    unavailable=f"perf script failed: {script.stderr.strip()[-200:]}"
                )
            counted = parse_script(script.stdout.splitlines())
            return MachineProfile(
                by_program(counted, owners(self.roots, {**self.parents, **_parents()}))
            )
        finally:
            self.folder.cleanup()


def table(result: MachineProfile, run: Profiles) -> list[str]:
    """The report's section: each program's CPU per order as perf counted it in the profiled
    `run` (beside /proc's), and where in the program it went."""
    lines = [
        "",
        f"### Where the machine's CPU goes (perf, all cores, {run.rate} orders/s offered for "
        f"{run.seconds:.0f} s)",
        "",
    ]
    busy = {name: parts for name, parts in result.samples.items() if name != IDLE}
    if not busy or not run.settled:
        return [*lines, f"No profile: {result.unavailable or 'no order settled'}."]
    total = sum(sum(parts.values()) for parts in busy.values())
    ms_per_sample = 1000 / RATE_HZ / run.settled
    lines += [
        f"{total} samples of busy cores, {RATE_HZ} a second (bench/perf_profile.py): each "
        "program's CPU per settled order as perf counts it, beside the same run's from /proc, "
        "and where in the program the time went: the Python interpreter's own executable "
        "(bytecode being run), compiled code (extension modules, libc, a server's own binary, "
        "the JVM's compiled code), the kernel (system calls, the network stack, scheduling).",
        "",
        "| program | ms per order (perf) | ms per order (/proc) | "
        + " | ".join(HEADINGS[p] for p in PARTS)
        + " |",
        "|---|---|---|" + "---|" * len(PARTS),
    ]
    ranked = sorted(busy.items(), key=lambda item: -sum(item[1].values()))
    shown = Counter[str]()
    for program, parts in ranked:
        samples = sum(parts.values())
        if samples * ms_per_sample < MIN_MS_PER_ORDER:
            continue
        shown.update(parts)
        proc = run.cpu_ms_per_order.get(program)
        lines.append(
            f"| {program} | {samples * ms_per_sample:.2f} | "
            + ("-" if proc is None else f"{proc:.2f}")
            + " | "
            + " | ".join(f"{parts[p] * 100 / samples:.0f}%" for p in PARTS)
            + " |"
        )
    all_samples = Counter[str]()
    for parts in busy.values():
        all_samples.update(parts)
    lines.append(
        f"| **all** | {total * ms_per_sample:.2f} | "
        f"{sum(run.cpu_ms_per_order.values()):.2f} | "
        + " | ".join(f"{all_samples[p] * 100 / total:.0f}%" for p in PARTS)
        + " |"
    )
    return lines
