"""The bench's /proc reader, on this very process and on one that is gone."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

from bench import procfs
from tests.support import wait_until


def test_this_process_reads_as_itself() -> None:
    found = procfs.cpu(os.getpid())
    assert found is not None
    ppid, seconds = found
    assert ppid == os.getppid()
    assert seconds > 0
    assert (procfs.rss_kib(os.getpid()) or 0) > 1024
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    assert procfs.files_limit(os.getpid()) == expected


def test_a_process_environment_is_the_one_it_started_with() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        env={**os.environ, "RTO_PROBE": "a=b"},
    )
    try:
        # Right after the start the kernel may still show an empty environment: until the new
        # program has its own, so wait (bounded) for it.
        probe = wait_until(
            lambda: (procfs.environ(child.pid) or {}).get("RTO_PROBE"),
            timeout=10,
            every=0.05,
            message="the child's environment",
        )
        assert probe == "a=b"
    finally:
        child.communicate(b"")


def test_a_process_that_is_gone_reads_as_none() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(child.stdout)
    assert procfs.cpu(pid) is None
    assert procfs.rss_kib(pid) is None
    assert procfs.files_limit(pid) is None
    assert procfs.environ(pid) is None
