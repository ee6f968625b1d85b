"""The images we ship build and start: ``scripts/images/build.py`` (``make images``,
``make images-smoke``).

The build test runs the real build with Docker or, without a Docker daemon, with buildah (bases
made by debootstrap, cached under ``~/.cache/realtimeorder/images``), then the smoke check: the
services image serves ``/healthz`` as the gateway and lacks the Kubernetes client, the operator
image imports its handlers, the web images serve ``/healthz``, every process runs as its image's
non-root user. Without a way to build it fails and says what to install: it never skips.

A first run on a machine takes about 20 minutes (debootstrap and every wheel); with the cache
warm, a code change rebuilds in a couple of minutes.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "images" / "build.py"
OPERATOR_PACKAGE = ROOT / "operator" / "realtimeorder_operator"
BUILD_TIMEOUT = 3600


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT,
        cwd=ROOT,
    )


@pytest.mark.images
@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_every_image_builds_starts_and_runs_as_non_root() -> None:
    build = _run("build")
    assert build.returncode == 0, f"make images failed:\n{build.stderr[-6000:]}"
    smoke = _run("smoke")
    assert smoke.returncode == 0, f"make images-smoke failed:\n{smoke.stderr[-6000:]}"
    for image in ("localhost/realtimeorder:", "localhost/realtimeorder-operator:"):
        assert f"smoke ok: {image}" in smoke.stderr, smoke.stderr
    web_skipped = "SKIPPING the web images" in build.stderr
    assert web_skipped or "smoke ok: localhost/realtimeorder-user-app:" in smoke.stderr


def _third_party_imports(package: Path) -> set[str]:
    """Top-level modules imported by the package that are neither stdlib nor its own."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {
        n
        for n in names
        if n not in sys.stdlib_module_names and n not in ("realtimeorder_operator", "__future__")
    }


def test_the_operator_image_keeps_exactly_what_the_operator_imports() -> None:
    """operator/Dockerfile names the distributions its image keeps; they are the ones the
    operator's code imports, so a new import cannot fail only in the cluster."""
    dockerfile = (ROOT / "operator" / "Dockerfile").read_text()
    match = re.search(r"python prune_venv\.py \\\n\s*([^\n]+)", dockerfile)
    assert match, "operator/Dockerfile no longer runs prune_venv.py with its roots"
    kept = {metadata.distribution(n).metadata["Name"].lower() for n in match.group(1).split()}
    modules = metadata.packages_distributions()
    imported = {
        modules[m][0].lower() for m in _third_party_imports(OPERATOR_PACKAGE) if m in modules
    }
    unknown = {m for m in _third_party_imports(OPERATOR_PACKAGE) if m not in modules}
    assert not unknown, f"the operator imports modules of no installed distribution: {unknown}"
    assert kept == imported
