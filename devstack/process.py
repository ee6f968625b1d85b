"""Run a `ServerSpec` as a child process: start, wait until ready, stop and confirm it is gone.

The test fixtures use this. The process gets its own process group, so stopping it also ends the
helpers it forked (Erlang's port programs, for instance) without touching anything else; we wait
on our child, and "stopped" means its ports no longer accept connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from devstack.ports import wait_closed
from devstack.servers import ServerSpec, identity


class ServerFailed(RuntimeError):
    """A server exited or did not become ready in time; the message ends with its log."""


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without variables that would confuse a server, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PG", "ERL_"))}
    env.update(extra or {})
    return env


def _exited_unreaped(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` for `pid` to exit, leaving it unreaped; True when it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # reaped already (a wait elsewhere in this process): gone
            return True
        time.sleep(0.05)
    return False


class ManagedProcess:
    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> Self:
        spec = self.spec
        started = time.monotonic()
        if spec.prepare is not None:
            spec.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        who = identity(spec.user)
        env = child_environment(dict(spec.env))
        if who.home is not None and "HOME" not in spec.env:
            env["HOME"] = who.home
        self._process = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=who.user,
            group=who.group,
            extra_groups=who.extra_groups,
        )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        assert self._process is not None
        deadline = started + self.spec.start_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise ServerFailed(
                    f"{self.spec.name} exited with {code} while starting; "
                    f"{self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                self.spec.ready()
            except Exception as exc:  # not ready yet: any failure of the probe
                last_error = exc
                time.sleep(0.2)
            else:
                return
        raise ServerFailed(
            f"{self.spec.name} not ready after {self.spec.start_timeout:.0f}s "
            f"(last probe: {last_error!r}); {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Stop the server and its process group, wait for it, and check its ports are closed."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.spec.stop_signal)
            if not _exited_unreaped(process.pid, self.spec.stop_timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            # The leader is a zombie now, so its pid (and group id) cannot be reused yet:
            # helpers it forked into its group may outlive it and are ours to end.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        still_open = wait_closed(self.spec.ports.values())
        if still_open:
            raise ServerFailed(f"{self.spec.name} stopped but ports {still_open} are still open")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
