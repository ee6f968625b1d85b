"""The two lockfiles agree with pyproject.toml and with each other (scripts/lock.sh writes them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def pins(lockfile: str) -> dict[str, str]:
    text = (ROOT / lockfile).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def declared() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": project["dependencies"], "dev": project["optional-dependencies"]["dev"]}


def test_pins_are_read_with_their_versions() -> None:
    found = pins("requirements.lock")
    assert found["fastapi"].count(".") >= 1
    assert all(version[0].isdigit() for version in found.values())


@pytest.mark.parametrize(
    ("lockfile", "groups"),
    [("requirements.lock", ("runtime",)), ("requirements-dev.lock", ("runtime", "dev"))],
)
def test_every_declared_dependency_is_pinned_at_a_version_it_allows(
    lockfile: str, groups: tuple[str, ...]
) -> None:
    locked, declaring = pins(lockfile), declared()
    wrong = []
    for group in groups:
        for spec in declaring[group]:
            requirement = Requirement(spec)
            version = locked.get(canonicalize_name(requirement.name))
            if version is None or not requirement.specifier.contains(version, prereleases=True):
                wrong.append(f"{spec}: {version or 'not pinned'}")
    assert wrong == [], f"run `make lock`: {lockfile} does not satisfy pyproject.toml: {wrong}"


def test_the_virtualenv_runs_the_versions_the_images_ship() -> None:
    images, venv = pins("requirements.lock"), pins("requirements-dev.lock")
    differ = {name: (version, venv.get(name)) for name, version in images.items()}
    assert {n: v for n, v in differ.items() if v[0] != v[1]} == {}
