"""The RabbitMQ management HTTP API calls the operator needs (httpx, async).

Declaring a queue is idempotent as long as the arguments match; RabbitMQ answers a redeclaration
with other arguments with 400 "inequivalent arg", which comes out as `QueueConflict` so the
handler can report it instead of retrying forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from realtimeorder_operator.builders import QueueDeclaration


class RabbitUnavailable(Exception):
    """The management API could not be reached or failed on its side."""


class RabbitRequestRejected(Exception):
    """The management API refused the request (bad credentials, unknown vhost, invalid value)."""


class QueueConflict(RabbitRequestRejected):
    """The queue exists with other arguments, which RabbitMQ cannot change in place."""


@dataclass(frozen=True)
class QueueCounts:
    messages: int
    messages_ready: int
    messages_unacknowledged: int
    consumers: int


def _path(vhost: str, name: str) -> str:
    return f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"


class RabbitManagement:
    def __init__(self, base_url: str, user: str, password: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), auth=(user, password), timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise RabbitUnavailable(f"{method} {path}: {exc!r}") from exc
        if response.status_code >= 500:
            raise RabbitUnavailable(f"{method} {path}: {response.status_code} {response.text}")
        return response

    async def get_queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", _path(vhost, name))
        if response.status_code == 404:
            return None
        _raise_for_rejection(response)
        queue: dict[str, Any] = response.json()
        return queue

    async def list_queues(self, vhost: str) -> list[dict[str, Any]]:
        """Name, type and message count of every queue in the vhost."""
        response = await self._request(
            "GET",
            f"/api/queues/{quote(vhost, safe='')}",
            params={"columns": "name,type,messages"},
        )
        _raise_for_rejection(response)
        queues: list[dict[str, Any]] = response.json()
        return queues

    async def declare_queue(self, vhost: str, declaration: QueueDeclaration) -> bool:
        """Declare the queue; True if it was created, False if it already existed as declared."""
        body = {
            "durable": True,
            "auto_delete": False,
            "arguments": {"x-queue-type": declaration.queue_type, **declaration.arguments},
        }
        response = await self._request("PUT", _path(vhost, declaration.name), json=body)
        if response.status_code == 400 and "inequivalent" in response.text:
            raise QueueConflict(_reason(response))
        _raise_for_rejection(response)
        return response.status_code == 201

    async def delete_queue(self, vhost: str, name: str) -> bool:
        """Delete the queue and its messages; False if it did not exist."""
        response = await self._request("DELETE", _path(vhost, name))
        if response.status_code == 404:
            return False
        _raise_for_rejection(response)
        return True

    async def delete_queue_if_empty(self, queue: dict[str, Any], vhost: str) -> bool:
        """Delete a queue (as listed by `list_queues`) only if it holds no message.

        A queue without a count (a quorum queue that never held a message reports none) is kept:
        unknown is not empty.
        """
        if queue.get("messages") != 0:
            return False
        if queue.get("type") == "quorum":
            # Quorum queues refuse the if-empty flag; the count above is the check.
            return await self.delete_queue(vhost, queue["name"])
        response = await self._request(
            "DELETE", _path(vhost, queue["name"]), params={"if-empty": "true"}
        )
        if response.status_code in (400, 404):
            return False
        _raise_for_rejection(response)
        return True

    async def queue_counts(self, vhost: str, name: str) -> QueueCounts | None:
        queue = await self.get_queue(vhost, name)
        if queue is None:
            return None
        return QueueCounts(
            messages=int(queue.get("messages") or 0),
            messages_ready=int(queue.get("messages_ready") or 0),
            messages_unacknowledged=int(queue.get("messages_unacknowledged") or 0),
            consumers=int(queue.get("consumers") or 0),
        )


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason") or response.text)
    except ValueError:
        return response.text


def _raise_for_rejection(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RabbitRequestRejected(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {_reason(response)}"
        )
