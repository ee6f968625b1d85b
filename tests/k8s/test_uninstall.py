"""`helm uninstall` with the operator running leaves no custom resource and no namespace behind.

A real release on the session's API server, reconciled by a real operator process that acts as
the chart's own operator ServiceAccount (so when Helm deletes that account and its Role, the
operator loses its access, as it would in a cluster), against the session's Kafka and RabbitMQ.
No kubelet runs here, so the test plays its part for the pre-delete hook: it runs the hook Job's
command as the hook's ServiceAccount, then reports the Job's pod as succeeded.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.testing import KafkaServer, RabbitMQServer
from tests.k8s.conftest import KubeCluster
from tests.k8s.operator import support
from tests.k8s.test_chart import CHART, RELEASE, ensure_namespace
from tests.support import wait_until

pytestmark = pytest.mark.k8s
GROUP, VERSION = "realtimeorder.io", "v1alpha1"
PLURALS = ("eventtopics", "notificationqueues", "workerautoscalers")
ROOT = Path(__file__).resolve().parents[2]


def custom_objects(api: client.ApiClient, namespace: str) -> dict[str, list[dict[str, Any]]]:
    objects = client.CustomObjectsApi(api)
    found: dict[str, list[dict[str, Any]]] = {}
    for plural in PLURALS:
        listed: dict[str, Any] = cast(
            dict[str, Any], objects.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        )
        items = listed["items"]
        if items:
            found[plural] = items
    return found


def hook_pod(core: client.CoreV1Api, namespace: str) -> Any:
    pods = core.list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=operator-uninstall"
    ).items
    return pods[0] if pods else None


def play_kubelet(
    kube: KubeCluster, kubectl: support.Kubectl, namespace: str, pod: Any, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Run the hook pod's command here, as its ServiceAccount; report the pod's outcome."""
    (container,) = pod.spec.containers
    kubeconfig = support.account_kubeconfig(
        kubectl, namespace, pod.spec.service_account_name, workdir / "hook-kubeconfig"
    )
    assert container.command[:2] == ["python", "-m"], container.command
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = subprocess.run(
        [sys.executable, *container.command[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    phase = "Succeeded" if result.returncode == 0 else "Failed"
    client.CoreV1Api(kube.api).patch_namespaced_pod_status(
        pod.metadata.name,
        namespace,
        {
            "status": {
                "phase": phase,
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "PodCompleted"},
                ],
                "containerStatuses": [
                    {
                        "name": container.name,
                        "image": container.image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {
                            "terminated": {
                                "exitCode": result.returncode,
                                "reason": "Completed" if phase == "Succeeded" else "Error",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            }
        },
    )
    return result


def test_uninstall_cleans_up_through_the_operator_and_leaves_nothing_behind(
    kube: KubeCluster,
    helm: Path,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path: Path,
) -> None:
    namespace = "chart-uninstall"
    suffix = uuid.uuid4().hex[:6]
    topic, queue = f"test.uninstall-{suffix}", f"test.uninstall-{suffix}"
    ensure_namespace(kube.api, namespace)
    kubectl = support.Kubectl(kube.control_plane)
    core = client.CoreV1Api(kube.api)
    rabbit = support.RabbitAdmin(rabbitmq_server)
    values = [
        # Topics and queues of this test only, removed with their resources (deletionPolicy
        # Delete: their deletion must clean up in Kafka and RabbitMQ, so they carry the
        # operator's finalizer); the workers and the notifications service, which need the
        # platform's queues, are off.
        f"eventTopics.topics[0].name={topic}",
        "eventTopics.deletionPolicy=Delete",
        f"notificationQueues.queues[0].name={queue}",
        "notificationQueues.deletionPolicy=Delete",
        "notificationQueues.type=classic",
        "notifications.enabled=false",
        "workers.email.enabled=false,workers.sms.enabled=false,workers.push.enabled=false",
        "workers.email.autoscaling.enabled=false,workers.sms.autoscaling.enabled=false",
        "workers.push.autoscaling.enabled=false",
        "workerAutoscalers[0].name=orders-on-queue,workerAutoscalers[0].target=orders",
        "workerAutoscalers[0].maxReplicas=3",
        f"workerAutoscalers[0].trigger.queueDepth.queue={queue}",
        "workerAutoscalers[0].trigger.queueDepth.messagesPerReplica=10",
    ]
    install = [str(helm), "install", RELEASE, str(CHART), "--namespace", namespace]
    install += ["--values", str(CHART / "ci" / "bundled-values.yaml")]
    for value in values:
        install += ["--set", value]
    result = subprocess.run(install, capture_output=True, text=True, env=kube.env(), check=False)
    assert result.returncode == 0, result.stderr

    operator_account = f"{RELEASE}-operator"
    kubeconfig = support.account_kubeconfig(
        kubectl, namespace, operator_account, tmp_path / "operator-kubeconfig"
    )
    env = {
        "WATCH_NAMESPACE": namespace,
        "KAFKA_BROKER": kafka_server.bootstrap,
        "RABBITMQ_MANAGEMENT_URL": rabbitmq_server.management_url,
        "RABBITMQ_USER": rabbitmq_server.user,
        "RABBITMQ_PASSWORD": rabbitmq_server.password,
    }
    uninstall: subprocess.Popen[str] | None = None
    with support.run_operator(kubeconfig, tmp_path / "operator.log", namespace, env):
        resources = support.Resources(kube.api, namespace)
        topic_object = f"{RELEASE}-{topic}.dlq"
        resources.wait_ready("eventtopics", f"{RELEASE}-{topic}", timeout=60)
        resources.wait_ready("eventtopics", topic_object, timeout=60)
        resources.wait_ready("notificationqueues", f"{RELEASE}-{queue}", timeout=60)
        assert support.topic_state(kafka_server.bootstrap, topic) is not None
        assert rabbit.queue(queue) is not None
        finalized = {
            plural: {o["metadata"]["name"] for o in items if o["metadata"].get("finalizers")}
            for plural, items in custom_objects(kube.api, namespace).items()
        }
        # Only what must be cleaned up outside the API server waits for the operator.
        assert finalized == {
            "eventtopics": {f"{RELEASE}-{topic}", topic_object},
            "notificationqueues": {f"{RELEASE}-{queue}"},
            "workerautoscalers": set(),
        }

        uninstall = subprocess.Popen(
            [str(helm), "uninstall", RELEASE, "--namespace", namespace, "--timeout", "4m"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=kube.env(),
        )
        try:
            pod = wait_until(
                lambda: hook_pod(core, namespace), timeout=60, message="the hook Job's pod"
            )
            hook = play_kubelet(kube, kubectl, namespace, pod, tmp_path)
            assert hook.returncode == 0, shlex.join(pod.spec.containers[0].command) + hook.stderr
            assert "deleted without cleanup" not in hook.stdout
            stdout, stderr = uninstall.communicate(timeout=120)
            assert uninstall.returncode == 0, stdout + stderr
        finally:
            if uninstall.poll() is None:
                uninstall.kill()

    # The operator cleaned up before it went: the topics and queues are gone with their
    # resources, and no resource is left.
    assert support.topic_state(kafka_server.bootstrap, topic) is None
    assert rabbit.queue(queue) is None
    assert custom_objects(kube.api, namespace) == {}
    core.delete_namespace(namespace)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_until(namespace_gone, timeout=120, message=f"namespace {namespace} deleted")
