"""The web apps' checked-in API client matches the services' API.

frontend/shared/openapi.json (the gateway's merged document) and the TypeScript types generated
from it are regenerated into a temporary folder and compared with the checked-in files: a
change to any service's routes or schemas fails here until `make api-client` is run and its
output committed with the change.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "frontend" / "shared"
GENERATED = (Path("openapi.json"), Path("src") / "api" / "schema.d.ts")


def test_checked_in_api_client_matches_the_services(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api-client.py"), "--out", str(tmp_path)],
        check=True,
        cwd=ROOT,
        timeout=180,
    )
    for relative in GENERATED:
        fresh = (tmp_path / relative).read_text(encoding="utf-8")
        checked_in = (SHARED / relative).read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                checked_in.splitlines(keepends=True),
                fresh.splitlines(keepends=True),
                f"checked in: frontend/shared/{relative}",
                f"generated from the services: {relative}",
                n=2,
            )
        )
        assert not diff, (
            f"frontend/shared/{relative} is out of date with the API: run `make api-client` "
            f"and commit the result.\n{diff[:4000]}"
        )
