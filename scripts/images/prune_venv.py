"""Uninstall from the running virtualenv every distribution its roots do not need.

Run with the virtualenv's own interpreter after ``pip install --no-deps --require-hashes -r
requirements.lock``: the lock pins and hashes every dependency of the whole project, and each
image keeps only the closure of its roots (the services drop the operator's Kubernetes client,
the operator drops the web stack). pip itself goes last, so no image ships an installer::

    python prune_venv.py --pyproject pyproject.toml --exclude kopf --exclude kubernetes
    python prune_venv.py kopf kubernetes httpx

Markers and extras are evaluated by the interpreter that runs this, so the closure is the one
of the image's Python. A root that is not installed is an error: the lock is out of date.
Standard library and pip's vendored ``packaging`` only: it runs before anything else exists.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from importlib import metadata

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name

INSTALLERS = ("pip", "setuptools", "wheel")


def roots_from_pyproject(path: str, exclude: set[str]) -> list[str]:
    with open(path, "rb") as fh:
        deps: list[str] = tomllib.load(fh)["project"]["dependencies"]
    return [d for d in deps if canonicalize_name(Requirement(d).name) not in exclude]


def closure(roots: list[str]) -> set[str]:
    """The canonical names of the installed distributions the roots need (extras included)."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    needed: set[str] = set()
    seen: set[tuple[str, str]] = set()
    stack = [Requirement(r) for r in roots]
    missing = [r.name for r in stack if canonicalize_name(r.name) not in installed]
    if missing:
        raise SystemExit(f"not installed (is requirements.lock current?): {', '.join(missing)}")
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        dist = installed.get(name)
        if dist is None:
            raise SystemExit(f"{name} is needed but not installed (is requirements.lock current?)")
        needed.add(name)
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for spec in dist.requires or []:
                child = Requirement(spec)
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    child.marker = None
                    stack.append(child)
    return needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", help="requirements the image needs")
    parser.add_argument("--pyproject", help="take the roots from this file's dependencies")
    parser.add_argument("--exclude", action="append", default=[], help="a pyproject root to drop")
    args = parser.parse_args()
    roots = list(args.roots)
    if args.pyproject:
        roots += roots_from_pyproject(args.pyproject, {canonicalize_name(e) for e in args.exclude})
    if not roots:
        parser.error("no roots")
    needed = closure(roots)
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    extra = sorted(installed - needed - set(INSTALLERS))
    pip = [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet"]
    if extra:
        print(f"not needed by {len(roots)} roots: {' '.join(extra)}", flush=True)
        subprocess.run([*pip, *extra], check=True)
    subprocess.run([*pip, *(n for n in INSTALLERS if n in installed)], check=True)
    print(f"kept {len(needed)} distributions", flush=True)


if __name__ == "__main__":
    main()
