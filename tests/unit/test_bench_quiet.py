"""The bench waits for an idle stack between runs, bounded, judged by the programs' CPU time."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench import cpu


def _child(code: str) -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", code])
    yield child.pid
    child.kill()
    child.wait()


@pytest.fixture
def idle() -> Iterator[int]:
    yield from _child("import time; time.sleep(60)")


@pytest.fixture
def spinning() -> Iterator[int]:
    yield from _child("while True: pass")


def test_an_idle_stack_is_quiet_at_once(idle: int) -> None:
    waited, busy = cpu.wait_quiet({"idle": idle}, window=0.3, within=5)
    assert busy < 0.25
    assert waited < 2


def test_a_busy_stack_is_waited_for_no_longer_than_the_bound(spinning: int) -> None:
    waited, busy = cpu.wait_quiet({"busy": spinning}, window=0.3, within=0.5)
    assert busy > 0.25
    assert 0.5 <= waited < 3
