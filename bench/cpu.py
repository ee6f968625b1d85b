"""CPU time of every process of the running stack, read from /proc, for "CPU per order".

Each program `make up` runs (a service, a worker, PostgreSQL, Kafka, Redis, RabbitMQ ...) is
its supervisor process and every descendant (PostgreSQL's backends, RabbitMQ's Erlang VM), so a
sample is the sum of user and system time over that tree, plus the time of children already
reaped (cutime, cstime). The load generator is this process. Two samples around a run give CPU
seconds per program; divided by the orders the run settled, the CPU milliseconds per order.
The supervisor itself is counted too (`SUPERVISOR`): it relays every program's output to its
log file, so each line a service logs costs CPU there as well as in the service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from bench import procfs
from devstack.stack import StackConfig, run_dir, supervisor

GENERATOR = "load generator"
SUPERVISOR = "supervisord"


def program_pids() -> dict[str, int]:
    """The pid of each running program of the stack (empty when the stack is not running)."""
    config = StackConfig.load(run_dir())
    if config is None:
        return {}
    rpc = supervisor(config)
    pids = {info["name"]: int(info["pid"]) for info in rpc.getAllProcessInfo() if info.get("pid")}
    pids[SUPERVISOR] = int(rpc.getPID())
    return pids


def processes() -> dict[int, tuple[int, float]]:
    """(parent pid, CPU seconds including reaped children) of every process now."""
    found: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            read = procfs.cpu(int(entry.name))
            if read is not None:
                found[int(entry.name)] = read
    return found


def programs(roots: Mapping[str, int], parents: Mapping[int, int]) -> dict[int, str]:
    """The program of each pid of `parents` (pid -> parent pid) in a tree of `roots` (name ->
    pid): the root its ancestors reach. Pids of no program's tree are left out."""
    root_of = {pid: name for name, pid in roots.items()}
    found: dict[int, str] = {}
    for pid in parents:
        ancestor, hops = pid, 0
        while ancestor not in root_of and ancestor > 1 and hops < 64:
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        if ancestor in root_of:
            found[pid] = root_of[ancestor]
    return found


def sample(roots: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, and of this process."""
    found = processes()
    totals = dict.fromkeys(roots, 0.0)
    for pid, name in programs(roots, {pid: ppid for pid, (ppid, _) in found.items()}).items():
        totals[name] += found[pid][1]
    own = procfs.cpu(os.getpid())
    totals[GENERATOR] = own[1] if own else 0.0
    return totals


def per_unit_ms(
    before: Mapping[str, float], after: Mapping[str, float], units: int
) -> dict[str, float]:
    """CPU milliseconds per unit of work (an order) of each program between two samples."""
    if units <= 0:
        return {}
    return {
        name: (after[name] - before.get(name, 0.0)) * 1000 / units
        for name in after
        if name in before
    }


def wait_quiet(
    roots: Mapping[str, int], *, below: float = 0.25, within: float = 180.0, window: float = 2.0
) -> tuple[float, float]:
    """Wait until the stack's programs together use less than `below` of one core over `window`
    seconds (the work a previous run left queued is done), for at most `within` seconds.

    Returns the seconds waited and the last share of a core measured."""
    started = time.monotonic()
    before = sample(roots)
    while True:
        time.sleep(window)
        after = sample(roots)
        busy = sum(after[n] - before.get(n, 0.0) for n in after if n != GENERATOR) / window
        waited = time.monotonic() - started
        if busy < below or waited >= within:
            return waited, busy
        before = after
