"""ManagedProcess: readiness, failure reports and a stop that leaves nothing behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from devstack.ports import EPHEMERAL_RANGE_FILE, NODE_PORTS_START, free_port, is_listening
from devstack.process import ManagedProcess, ServerFailed, _exited_unreaped
from devstack.servers import ServerSpec


def listening(port: int) -> None:
    if not is_listening(port):
        raise ConnectionError(f"nothing on {port} yet")


def spec(tmp_path: Path, script: str, port: int, *, start_timeout: float = 20) -> ServerSpec:
    return ServerSpec(
        name="toy",
        argv=("sh", "-c", script),
        cwd=tmp_path,
        ports={"http": port},
        ready=lambda: listening(port),
        start_timeout=start_timeout,
        stop_timeout=5,
    )


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def gone_soon(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: allow the process a moment to die."""
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_stop_ends_the_server_and_what_it_forked_and_frees_its_port(tmp_path: Path) -> None:
    port = free_port()
    pid_file = tmp_path / "helper.pid"
    script = (
        f"sleep 300 & echo $! > {pid_file}; "
        f"exec {sys.executable} -m http.server --bind 127.0.0.1 {port}"
    )
    process = ManagedProcess(spec(tmp_path, script, port), tmp_path / "toy.log").start()
    helper = int(pid_file.read_text())
    assert is_listening(port)
    assert alive(helper)

    process.stop()

    assert not is_listening(port)
    assert gone_soon(helper)
    assert process.pid is None


def test_a_server_reaped_by_another_wait_counts_as_exited(tmp_path: Path) -> None:
    port = free_port()
    process = ManagedProcess(
        spec(tmp_path, f"exec {sys.executable} -m http.server --bind 127.0.0.1 {port}", port),
        tmp_path / "toy.log",
    ).start()
    pid = process.pid
    assert pid is not None
    os.kill(pid, 9)
    os.waitpid(pid, 0)  # what a concurrent Popen.poll() or wait does

    assert _exited_unreaped(pid, 1)
    process.stop()
    assert not is_listening(port)


def test_a_server_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        spec(tmp_path, "echo 'config error on line 3'; exit 3", free_port()), tmp_path / "toy.log"
    )
    with pytest.raises(ServerFailed, match=r"exited with 3(.|\n)*config error on line 3"):
        process.start()


def test_a_server_that_never_answers_is_stopped_after_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    process = ManagedProcess(
        spec(tmp_path, f"echo $$ > {pid_file}; exec sleep 300", free_port(), start_timeout=1),
        tmp_path / "toy.log",
    )
    with pytest.raises(ServerFailed, match="not ready after 1s"):
        process.start()
    assert gone_soon(int(pid_file.read_text()))


def test_servers_do_not_inherit_variables_that_would_redirect_them(tmp_path: Path) -> None:
    port = free_port()
    env_file = tmp_path / "env"
    script = f"env > {env_file}; exec {sys.executable} -m http.server --bind 127.0.0.1 {port}"
    os.environ["PGDATA"] = "/somewhere/else"
    try:
        with ManagedProcess(spec(tmp_path, script, port), tmp_path / "toy.log"):
            pass
    finally:
        del os.environ["PGDATA"]
    assert "PGDATA=" not in env_file.read_text()


def test_a_free_port_is_outside_the_ephemeral_and_node_port_ranges_and_never_reused() -> None:
    first_ephemeral = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    ports = [free_port() for _ in range(200)]
    assert all(1024 <= p < min(first_ephemeral, NODE_PORTS_START) for p in ports)
    assert len(set(ports)) == len(ports)
