"""The local control plane works end to end: the API server stores objects and the
controller-manager reconciles them (a Deployment gets a ReplicaSet, a namespace its default
service account and root CA ConfigMap)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.k8s.controlplane import control_plane, listening_pids
from tests.support import wait_until

NAMESPACE = "controlplane-smoke"
DEPLOYMENT = "web"


def _deployment() -> client.V1Deployment:
    labels = {"app": DEPLOYMENT}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=DEPLOYMENT, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="nginx:1.27")]
                ),
            ),
        ),
    )


def _meta(obj: client.V1Deployment | client.V1ReplicaSet) -> client.V1ObjectMeta:
    assert obj.metadata is not None
    return obj.metadata


def _names(items: list[client.V1ServiceAccount] | list[client.V1ConfigMap]) -> set[str]:
    return {str(item.metadata.name) for item in items if item.metadata is not None}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.k8s
def test_deployment_gets_a_replicaset(tmp_path: Path) -> None:
    with control_plane(tmp_path / "cp") as cp:
        assert cp.server.startswith("https://127.0.0.1:")
        assert set(cp.pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        api_client: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cp.kubeconfig)
        )
        with api_client:
            core = client.CoreV1Api(api_client)
            apps = client.AppsV1Api(api_client)

            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
            deployment_uid = _meta(apps.create_namespaced_deployment(NAMESPACE, _deployment())).uid

            owned: list[client.V1ReplicaSet] = []

            def replica_set_exists() -> bool:
                listed = apps.list_namespaced_replica_set(
                    NAMESPACE, label_selector=f"app={DEPLOYMENT}"
                ).items
                owned[:] = [
                    rs
                    for rs in listed
                    if any(ref.uid == deployment_uid for ref in _meta(rs).owner_references or [])
                ]
                return bool(owned)

            wait_until(
                replica_set_exists,
                timeout=90,
                every=0.5,
                message="the controller-manager to create a ReplicaSet for the Deployment",
            )
            assert owned[0].spec is not None
            assert owned[0].spec.replicas == 2

            # The service-account controllers run too: the namespace gets its default account
            # and the root CA ConfigMap (from --root-ca-file).
            def namespace_populated() -> bool:
                accounts = _names(core.list_namespaced_service_account(NAMESPACE).items)
                config_maps = _names(core.list_namespaced_config_map(NAMESPACE).items)
                return "default" in accounts and "kube-root-ca.crt" in config_maps

            wait_until(namespace_populated, timeout=60, every=0.5, message="namespace populated")

    # Stopped: every child was reaped and none of them listens on its ports any more.
    assert all(_gone(pid) for pid in cp.pids.values())
    for name, ports in cp.ports.items():
        for port in ports:
            assert not listening_pids(port) & set(cp.pids.values()), (name, port)
