"""Reading figures from Prometheus over its HTTP API (instant queries, PromQL).

A figure is one scalar: the single sample of an instant vector or scalar result. A query with
no series answers None (nothing measured yet); NaN (a ratio of zero rates) is None too. When
Prometheus cannot be reached, answers an error or takes longer than the timeout, every figure
of the call fails together with `PrometheusUnavailable`, so a report can say once why its
Prometheus figures are missing.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import httpx


class PrometheusUnavailable(Exception):
    """Prometheus did not answer a query (unreachable, an error, or too slow)."""


class Prometheus:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def scalar(self, query: str) -> float | None:
        return _scalar(await self._query(query))

    async def vector(self, query: str, label: str) -> dict[str, float]:
        """One value per series, by the series' `label` (series without it are left out)."""
        data = await self._query(query)
        found: dict[str, float] = {}
        for series in data.get("result") or []:
            key = series.get("metric", {}).get(label)
            value = float(series["value"][1])
            if key is not None and not (math.isnan(value) or math.isinf(value)):
                found[key] = value
        return found

    async def _query(self, query: str) -> dict[str, Any]:
        try:
            response = await self._client.get("/api/v1/query", params={"query": query})
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(f"{self.url} unreachable: {exc!r}") from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise PrometheusUnavailable(f"{self.url} answered {response.status_code}") from exc
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"query {query!r} failed: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data

    async def figures(self, queries: Mapping[str, str]) -> dict[str, float | None]:
        """Every query at once, by name; raises `PrometheusUnavailable` if any cannot run."""
        names = list(queries)
        values = await asyncio.gather(*(self.scalar(queries[name]) for name in names))
        return dict(zip(names, values, strict=True))


def _scalar(data: dict[str, Any]) -> float | None:
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list):
        sample = result
    elif isinstance(result, list) and result:
        sample = result[0].get("value")
    else:
        return None
    value = float(sample[1])
    return None if math.isnan(value) or math.isinf(value) else value
