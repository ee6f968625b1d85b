"""`python -m realtimeorder_operator.uninstall`: delete a release's custom resources and wait.

The chart runs this as a pre-delete hook Job, before Helm deletes the operator, its RBAC and its
ServiceAccount: the resources that carry the operator's finalizer (the ones whose deletion must
clean something up in Kafka or RabbitMQ) are then still handled by a running operator, instead of
staying in deletion for good and holding the namespace with them.

When the operator has not finished after --timeout seconds (Kafka or RabbitMQ gone, or refusing
its credentials), --skip-cleanup-after-timeout annotates what is left with
`realtimeorder.io/skip-cleanup=true`, which lets the operator release them at once without
cleaning up; whatever still carries the operator's finalizer --grace seconds later (no operator
running at all) has that finalizer removed. The names of everything left uncleaned are printed.
Without the flag the hook fails, and so does `helm uninstall`, naming the resources.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from realtimeorder_operator.builders import GROUP, SKIP_CLEANUP_ANNOTATION, VERSION

FINALIZER = f"{GROUP}/finalizer"
# Scalers first (they scale Deployments that are about to go), topics last.
KINDS = ("workerautoscalers", "notificationqueues", "eventtopics")
POLL_SECONDS = 1.0


class Resources:
    def __init__(self, api: client.ApiClient, namespace: str, selector: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.selector = selector

    def items(self, plural: str) -> list[dict[str, Any]]:
        found = cast(
            dict[str, Any],
            self.objects.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, label_selector=self.selector
            ),
        )
        return list(found.get("items") or [])

    def remaining(self, kinds: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        return {plural: items for plural in kinds if (items := self.items(plural))}

    def delete(self, plural: str, name: str) -> None:
        try:
            self.objects.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> None:
        try:
            self.objects.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, patch
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone meanwhile, or changed: the next pass looks
                raise


def wait_gone(resources: Resources, kinds: Sequence[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while resources.remaining(kinds):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def names(remaining: dict[str, list[dict[str, Any]]]) -> str:
    return ", ".join(
        f"{plural}/{item['metadata']['name']}"
        for plural, items in remaining.items()
        for item in items
    )


def release_finalizers(resources: Resources, kinds: Sequence[str]) -> None:
    """Remove the operator's finalizer from what is left (no operator answered the annotation).
    The resourceVersion makes the patch fail rather than drop a finalizer added meanwhile."""
    for plural, items in resources.remaining(kinds).items():
        for item in items:
            finalizers = item["metadata"].get("finalizers") or []
            if FINALIZER in finalizers:
                resources.patch(
                    plural,
                    item["metadata"]["name"],
                    {
                        "metadata": {
                            "finalizers": [f for f in finalizers if f != FINALIZER],
                            "resourceVersion": item["metadata"]["resourceVersion"],
                        }
                    },
                )


def uninstall(
    resources: Resources,
    kinds: Sequence[str],
    *,
    timeout: float,
    grace: float,
    skip_cleanup_after_timeout: bool,
) -> int:
    for plural in kinds:
        for item in resources.items(plural):
            resources.delete(plural, item["metadata"]["name"])
    if wait_gone(resources, kinds, timeout):
        print(f"deleted the custom resources of {resources.selector}", flush=True)
        return 0
    left = resources.remaining(kinds)
    if not skip_cleanup_after_timeout:
        print(f"still being cleaned up after {timeout:g}s: {names(left)}", file=sys.stderr)
        return 1
    print(f"not cleaned up after {timeout:g}s, deleted without cleanup: {names(left)}", flush=True)
    for plural, items in left.items():
        for item in items:
            annotations = {SKIP_CLEANUP_ANNOTATION: "true"}
            resources.patch(
                plural, item["metadata"]["name"], {"metadata": {"annotations": annotations}}
            )
    deadline = time.monotonic() + grace
    while resources.remaining(kinds) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for _attempt in range(5):
        release_finalizers(resources, kinds)
        if wait_gone(resources, kinds, 5):
            return 0
    print(f"could not delete: {names(resources.remaining(kinds))}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--selector", required=True, help="label selector of the release")
    parser.add_argument("--kinds", default=",".join(KINDS), help="plurals, comma-separated")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--grace", type=float, default=15.0)
    parser.add_argument("--skip-cleanup-after-timeout", action="store_true")
    args = parser.parse_args(argv)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    kinds = [k for k in args.kinds.split(",") if k]
    with client.ApiClient() as api:
        return uninstall(
            Resources(api, args.namespace, args.selector),
            kinds,
            timeout=args.timeout,
            grace=args.grace,
            skip_cleanup_after_timeout=args.skip_cleanup_after_timeout,
        )


if __name__ == "__main__":
    sys.exit(main())
