"""The target Deployment's scale subresource (apps/v1 deployments/scale).

Going through /scale needs only the `deployments/scale` permission and touches nothing but the
replica count, so a Helm upgrade and the autoscaler do not fight over the rest of the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.aio import client

from realtimeorder_operator.kube import MERGE_PATCH, NotFound, call


@dataclass(frozen=True)
class Scale:
    desired: int  # spec.replicas
    ready: int  # status.replicas: pods the Deployment currently has


class DeploymentScaler:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api_client)

    async def read(self, namespace: str, name: str) -> Scale | None:
        try:
            scale = await call(self._apps.read_namespaced_deployment_scale(name, namespace))
        except NotFound:
            return None
        return Scale(
            desired=int((scale.spec and scale.spec.replicas) or 0),
            ready=int((scale.status and scale.status.replicas) or 0),
        )

    async def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        await call(
            self._apps.patch_namespaced_deployment_scale(
                name, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH
            )
        )
