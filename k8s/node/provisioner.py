"""The node's storage: binds every pending claim of StorageClass ``local-path`` to a hostPath
volume under ``--volumes`` and deletes the volume and its folder once released.

One node, so a folder per claim is all a PersistentVolume needs; folders are world-writable
because pods run as arbitrary non-root users and hostPath volumes get no fsGroup.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

STORAGE_CLASS = "local-path"
PROVISIONER = "realtimeorder.io/local-path"

log = logging.getLogger("provisioner")


def volume_name(claim: Any) -> str:
    return f"pvc-{claim.metadata.uid}"


def provision(core: client.CoreV1Api, claim: Any, volumes: Path) -> None:
    name = volume_name(claim)
    folder = volumes / f"{claim.metadata.namespace}-{claim.metadata.name}-{claim.metadata.uid[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": claim.spec.resources.requests["storage"]},
            "accessModes": claim.spec.access_modes,
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": claim.spec.volume_mode or "Filesystem",
            "hostPath": {"path": str(folder), "type": "Directory"},
            "claimRef": {
                "namespace": claim.metadata.namespace,
                "name": claim.metadata.name,
                "uid": claim.metadata.uid,
            },
        },
    }
    try:
        core.create_persistent_volume(body)  # type: ignore[arg-type]
        log.info("bound %s/%s to %s", claim.metadata.namespace, claim.metadata.name, folder)
    except ApiException as exc:
        if exc.status != 409:
            raise


def reclaim(core: client.CoreV1Api, volume: Any) -> None:
    path = Path(volume.spec.host_path.path)
    shutil.rmtree(path, ignore_errors=True)
    try:
        core.delete_persistent_volume(volume.metadata.name)
        log.info("deleted %s and %s", volume.metadata.name, path)
    except ApiException as exc:
        if exc.status != 404:
            raise


def sweep(core: client.CoreV1Api, volumes: Path) -> None:
    claims: list[Any] = core.list_persistent_volume_claim_for_all_namespaces().items
    for claim in claims:
        if (
            claim.status.phase == "Pending"
            and claim.spec.storage_class_name == STORAGE_CLASS
            and not claim.spec.volume_name
        ):
            provision(core, claim, volumes)
    pvs: list[Any] = core.list_persistent_volume().items
    for volume in pvs:
        annotations = volume.metadata.annotations or {}
        if annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER and (
            volume.status.phase == "Released"
        ):
            reclaim(core, volume)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--volumes", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config.load_kube_config(args.kubeconfig)  # type: ignore[no-untyped-call]
    core = client.CoreV1Api()
    args.volumes.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            sweep(core, args.volumes)
        except Exception:
            log.exception("sweep failed; retrying")
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
