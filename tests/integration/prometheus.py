"""A real Prometheus for a test module, scraping whatever the tests point it at.

It scrapes every second, and its targets are a file it watches (`file_sd_configs`): a test
that starts a service on a free port calls `scrape(name, url)` and Prometheus picks the new
target up within a second or two, without a restart.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack import servers
from devstack.ports import HOST, free_port
from devstack.testing import start


@dataclass
class PrometheusServer:
    port: int
    targets_file: Path
    targets: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def scrape(self, name: str, base_url: str) -> None:
        """Add `base_url`'s /metrics as target `name` and wait until Prometheus scrapes it."""
        self.targets[name] = urllib.parse.urlsplit(base_url).netloc
        groups = [
            {"targets": [target], "labels": {"service": service}}
            for service, target in self.targets.items()
        ]
        staging = self.targets_file.with_suffix(".tmp")
        staging.write_text(json.dumps(groups))
        staging.replace(self.targets_file)
        await self.wait_for(f'up{{service="{name}"}} == 1', what=f"{name} to be scraped")

    async def query(self, expr: str) -> list[dict[str, Any]]:
        # Async: the services it scrapes may run on the test's own event loop.
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    async def wait_for(self, expr: str, *, within: float = 30.0, what: str = "a series") -> None:
        deadline = time.monotonic() + within
        while not await self.query(expr):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within}s waiting for {what} ({expr})")
            await asyncio.sleep(0.2)


@contextmanager
def running_prometheus() -> Iterator[PrometheusServer]:
    root = Path(tempfile.mkdtemp(prefix="prometheus-"))
    port = free_port()
    targets_file = root / "targets.json"
    targets_file.write_text("[]")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "services",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }
    (root / "prometheus.yml").write_text(json.dumps(config))

    def ready() -> None:
        httpx.get(f"http://{HOST}:{port}/-/ready", timeout=2).raise_for_status()

    spec = servers.ServerSpec(
        name="prometheus",
        argv=(
            shutil.which("prometheus") or "/usr/bin/prometheus",
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={HOST}:{port}",
        ),
        cwd=root,
        ports={"prometheus": port},
        ready=ready,
    )
    process = start(spec, root)
    try:
        yield PrometheusServer(port, targets_file)
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
