"""The whole machine's profile: perf's samples charged to programs and to what ran in them."""

from __future__ import annotations

import os
from collections import Counter

from bench import perf_profile
from bench.cpu import GENERATOR
from bench.perf_profile import COMPILED, IDLE, INTERPRETER, KERNEL, OTHER
from bench.profile import Profiles

SCRIPT = """\
    1200      7f00aa12 (/usr/bin/python3.11)
    1200  ffffffff8123 ([kernel.kallsyms])
    1201      52b83b (/venv/site-packages/uvloop/loop.cpython-311-x86_64-linux-gnu.so)
    1300      6a1b2c (/usr/lib/postgresql/15/bin/postgres)
    1300      6a1b2c (/usr/lib/postgresql/15/bin/postgres)
       0  ffffffff8100 ([kernel.kallsyms])
    4444      7f0012 ([JIT] tid 1064)
    9999      1234 (/usr/lib/x86_64-linux-gnu/libc.so.6)
not a sample line
"""


def test_parts_of_a_program() -> None:
    assert perf_profile.part("/usr/bin/python3.11") == INTERPRETER
    assert perf_profile.part("/opt/python/lib/libpython3.12.so.1.0") == INTERPRETER
    assert perf_profile.part("[kernel.kallsyms]") == KERNEL
    assert perf_profile.part("[vdso]") == KERNEL
    assert perf_profile.part("/usr/lib/postgresql/15/bin/postgres") == COMPILED
    assert perf_profile.part("[JIT] tid 1064") == COMPILED
    assert perf_profile.part("/x/_pydantic_core.cpython-311-x86_64-linux-gnu.so") == COMPILED


def test_samples_are_charged_to_the_program_of_their_process_tree() -> None:
    # orders (1000) has a thread-like child 1200 and a grandchild 1201; PostgreSQL (1100) a
    # backend 1300; Kafka (4000) the JVM 4444; 9999 belongs to nothing of the stack.
    parents = {1200: 1000, 1201: 1200, 1300: 1100, 4444: 4000, 9999: 1, 1000: 1, 1100: 1, 4000: 1}
    roots = {"orders": 1000, "postgres": 1100, "kafka": 4000}
    programs = perf_profile.owners(roots, parents)
    assert programs[1201] == "orders"
    assert programs[1300] == "postgres"
    assert programs[os.getpid()] == GENERATOR
    assert 9999 not in programs

    counted = perf_profile.parse_script(SCRIPT.splitlines())
    assert sum(counted.values()) == 8
    samples = perf_profile.by_program(counted, programs)
    assert samples["orders"] == Counter({INTERPRETER: 1, KERNEL: 1, COMPILED: 1})
    assert samples["postgres"] == Counter({COMPILED: 2})
    assert samples["kafka"] == Counter({COMPILED: 1})
    assert samples[IDLE] == Counter({KERNEL: 1})
    assert samples[OTHER] == Counter({COMPILED: 1})


def test_the_table_gives_ms_per_order_beside_proc_and_leaves_idle_cores_out() -> None:
    rate = perf_profile.RATE_HZ
    run = Profiles(
        rate=150,
        seconds=20,
        settled=1000,  # a second of samples is then 1 ms per order
        cpu_ms_per_order={"orders": 4.1, "postgres": 1.9},
    )
    result = perf_profile.MachineProfile(
        samples={
            "orders": Counter({INTERPRETER: 3 * rate, COMPILED: rate}),
            "postgres": Counter({COMPILED: rate, KERNEL: rate}),
            "redis": Counter({KERNEL: 1}),
            IDLE: Counter({KERNEL: 50 * rate}),
        },
    )
    lines = perf_profile.table(result, run)
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0].startswith("| program | ms per order (perf) | ms per order (/proc) |")
    body = rows[1:]
    assert body[0] == "| orders | 4.00 | 4.10 | 75% | 25% | 0% |"
    assert body[1] == "| postgres | 2.00 | 1.90 | 0% | 50% | 50% |"
    assert not any(row.startswith(("| redis", f"| {IDLE}")) for row in body)  # too little; idle
    assert body[-1] == "| **all** | 6.00 | 6.00 | 50% | 33% | 17% |"


def test_no_table_without_samples() -> None:
    result = perf_profile.MachineProfile(unavailable="perf is not installed")
    run = Profiles(rate=150, seconds=20, settled=1000)
    assert perf_profile.table(result, run)[-1] == "No profile: perf is not installed."
