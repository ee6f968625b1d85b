"""What the bench reads of a process from /proc: CPU time, resident memory, the open-files
limit and the environment. A process that is gone (or unreadable) reads as None."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _read(pid: int, name: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return None


def cpu(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds including reaped children) of a process."""
    raw = _read(pid, "stat")
    if raw is None:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / _TICKS


def _field(pid: int, name: str, prefix: str, index: int) -> str | None:
    raw = _read(pid, name)
    for line in (raw or "").splitlines():
        if line.startswith(prefix):
            return line.split()[index]
    return None


def rss_kib(pid: int) -> int | None:
    """Resident memory in KiB."""
    value = _field(pid, "status", "VmRSS:", 1)
    return int(value) if value is not None else None


def files_limit(pid: int) -> str | None:
    """The soft open-files limit ("unlimited" or a number)."""
    return _field(pid, "limits", "Max open files", 3)


def environ(pid: int) -> dict[str, str] | None:
    """The environment the process started with."""
    raw = _read(pid, "environ")
    if raw is None:
        return None
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)
