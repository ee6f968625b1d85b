"""The Kubernetes API calls the handlers make themselves (kopf only patches the object it handles).

Custom objects (Strimzi KafkaTopics, topology Queues and Policies, our own resources' status), on
the official client's asyncio flavour. Objects come back as plain dicts; a missing object is None
(or False) rather than an exception, and failures come out as `KubeUnavailable` (retry later) or
`KubeRequestRejected` (the server said no: validation, permissions, conflict).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import aiohttp
from kubernetes.aio import client, config
from kubernetes.aio.client.exceptions import ApiException

Body = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
T = TypeVar("T")


class KubeUnavailable(Exception):
    """The API server failed or could not be reached."""


class KubeRequestRejected(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotFound(Exception):
    pass


async def connect() -> client.ApiClient:
    """A client with the pod's service account in a cluster, else the kubeconfig (KUBECONFIG)."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"),
            client_configuration=configuration,
            persist_config=False,
        )
    return client.ApiClient(configuration)


async def call(request: Awaitable[T]) -> T:
    """Await one API request, translating its failures; a 404 raises `NotFound`."""
    try:
        return await request
    except ApiException as exc:
        message = f"{exc.status} {exc.reason}: {exc.body!r}"
        if exc.status == 404:
            raise NotFound(message) from exc
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            raise KubeUnavailable(message) from exc
        raise KubeRequestRejected(exc.status, message) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise KubeUnavailable(repr(exc)) from exc


class CustomObjects:
    """One namespaced custom resource type (group, version, plural)."""

    def __init__(self, api_client: client.ApiClient, group: str, version: str, plural: str):
        self._api = client.CustomObjectsApi(api_client)
        self.group, self.version, self.plural = group, version, plural

    async def get(self, namespace: str, name: str) -> Body | None:
        try:
            found = await call(
                self._api.get_namespaced_custom_object(
                    self.group, self.version, namespace, self.plural, name
                )
            )
        except NotFound:
            return None
        return cast(Body, found)

    async def list(self, namespace: str, label_selector: str) -> list[Body]:
        found = await call(
            self._api.list_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, label_selector=label_selector
            )
        )
        return list(cast(Body, found).get("items") or [])

    async def list_watched(self, namespaces: builtins.list[str]) -> builtins.list[Body]:
        """Every object in the given namespaces, or in all namespaces when the list is empty."""
        if not namespaces:
            found = await call(
                self._api.list_cluster_custom_object(self.group, self.version, self.plural)
            )
            return list(cast(Body, found).get("items") or [])
        return [item for namespace in namespaces for item in await self.list(namespace, "")]

    async def create(self, namespace: str, body: Body) -> Body:
        created = await call(
            self._api.create_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, body
            )
        )
        return cast(Body, created)

    async def patch(self, namespace: str, name: str, patch: Body) -> Body | None:
        try:
            patched = await call(
                self._api.patch_namespaced_custom_object(
                    self.group,
                    self.version,
                    namespace,
                    self.plural,
                    name,
                    patch,
                    _content_type=MERGE_PATCH,
                )
            )
        except NotFound:
            return None
        return cast(Body, patched)

    async def patch_status(self, namespace: str, name: str, status: Body) -> None:
        try:
            await call(
                self._api.patch_namespaced_custom_object_status(
                    self.group,
                    self.version,
                    namespace,
                    self.plural,
                    name,
                    {"status": status},
                    _content_type=MERGE_PATCH,
                )
            )
        except NotFound:
            return

    async def delete(self, namespace: str, name: str) -> bool:
        try:
            await call(
                self._api.delete_namespaced_custom_object(
                    self.group, self.version, namespace, self.plural, name
                )
            )
        except NotFound:
            return False
        return True


async def post_event(
    api_client: client.ApiClient, involved: Body, type: str, reason: str, message: str
) -> None:
    """Record a core/v1 Event on an object (what kopf.event does inside a kopf handler)."""
    metadata = involved["metadata"]
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    event = {
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata.get("uid"),
        },
        "type": type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "realtimeorder-operator"},
        "reportingComponent": "realtimeorder-operator",
        "reportingInstance": os.environ.get("HOSTNAME", "realtimeorder-operator"),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    await call(
        client.CoreV1Api(api_client).create_namespaced_event(
            metadata["namespace"], cast(Any, event)
        )
    )
