"""The interpreter scripts/install.sh makes the virtualenv from (scripts/venv-python.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "venv-python.sh"


def fake_python(directory: Path, name: str, *, recent: bool) -> Path:
    """An executable that answers the version check as a 3.11+ (or older) interpreter would."""
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {0 if recent else 1}\n")
    path.chmod(0o755)
    return path


def shell(command: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; {command}'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    # Only the fakes and the shell's own tools on PATH: which python3 is found there is the
    # test's choice, not the machine's.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **variables}


def test_the_distributions_interpreter_when_it_is_recent_enough(tmp_path: Path) -> None:
    distribution = fake_python(tmp_path, "distribution-python3", recent=True)
    env = environment(tmp_path, DISTRIBUTION_PYTHON=str(distribution))
    assert shell("venv_python", env) == str(distribution)


def test_python3_on_the_path_when_the_distributions_is_older(tmp_path: Path) -> None:
    distribution = fake_python(tmp_path, "distribution-python3", recent=False)
    env = environment(tmp_path, DISTRIBUTION_PYTHON=str(distribution))
    assert shell("venv_python", env) == "python3"


def test_python3_on_the_path_when_there_is_no_distribution_interpreter(tmp_path: Path) -> None:
    env = environment(tmp_path, DISTRIBUTION_PYTHON=str(tmp_path / "missing"))
    assert shell("venv_python", env) == "python3"


def test_python_chooses_over_the_distributions(tmp_path: Path) -> None:
    distribution = fake_python(tmp_path, "distribution-python3", recent=True)
    chosen = fake_python(tmp_path, "chosen-python", recent=True)
    env = environment(tmp_path, DISTRIBUTION_PYTHON=str(distribution), PYTHON=str(chosen))
    assert shell("venv_python", env) == str(chosen)


def test_the_version_check_refuses_an_older_interpreter(tmp_path: Path) -> None:
    old = fake_python(tmp_path, "old-python", recent=False)
    recent = fake_python(tmp_path, "recent-python", recent=True)
    env = environment(tmp_path)
    assert shell(f'is_python311 "{recent}" && echo yes || echo no', env) == "yes"
    assert shell(f'is_python311 "{old}" && echo yes || echo no', env) == "no"
    assert shell(f'is_python311 "{tmp_path / "missing"}" && echo yes || echo no', env) == "no"


def test_a_virtualenv_and_its_base_interpreter_share_a_base(tmp_path: Path) -> None:
    # The check install.sh makes before keeping .venv: a virtualenv's python and the
    # interpreter it was made from name the same real executable.
    env = environment(tmp_path)
    base = os.path.realpath(getattr(sys, "_base_executable"))  # noqa: B009 - not in typeshed
    assert shell(f'base_interpreter "{sys.executable}"', env) == base
    assert shell(f'base_interpreter "{base}"', env) == base
