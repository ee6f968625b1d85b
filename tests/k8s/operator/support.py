"""Helpers for the operator's tests against the real API server, Kafka and RabbitMQ.

`OperatorProcess` runs the operator exactly as its image does (`python -m
realtimeorder_operator`), with short repair intervals, as a ServiceAccount holding only the RBAC
rules in `OPERATOR_RULES` (the rules the chart must grant), so a missing permission fails a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devstack.ports import free_port
from tests.k8s.controlplane import ControlPlane
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[3]
GROUP, VERSION = "realtimeorder.io", "v1alpha1"
# The names the managed-mode operator is configured with (no such clusters run in the tests).
STRIMZI_CLUSTER = "events"
RABBITMQ_CLUSTER = "rabbit"
T = TypeVar("T")

# Namespaced rules, bound in each watched namespace (or cluster-wide for an all-namespace operator).
OPERATOR_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["eventtopics", "notificationqueues", "workerautoscalers"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {
        "apiGroups": [GROUP],
        "resources": [
            "eventtopics/status",
            "notificationqueues/status",
            "workerautoscalers/status",
        ],
        "verbs": ["get", "patch", "update"],
    },
    {
        # Owner references with blockOwnerDeletion need this where admission enforces it.
        "apiGroups": [GROUP],
        "resources": [
            "eventtopics/finalizers",
            "notificationqueues/finalizers",
            "workerautoscalers/finalizers",
        ],
        "verbs": ["update"],
    },
    {
        "apiGroups": ["kafka.strimzi.io"],
        "resources": ["kafkatopics"],
        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["rabbitmq.com"],
        "resources": ["queues", "policies"],
        "verbs": ["get", "list", "create", "patch", "delete"],
    },
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
]
# Cluster-scoped reads kopf uses to notice CRDs (and namespaces) appearing and disappearing.
OPERATOR_CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def load_yaml(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


class Kubectl:
    """The control plane's own kubectl, for applying manifests as plain YAML."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def __call__(self, *args: str, manifest: str | None = None) -> str:
        result = subprocess.run(
            [str(self.plane.bin_dir / "kubectl"), *args],
            input=manifest,
            capture_output=True,
            text=True,
            env=self.plane.env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def apply(self, *documents: dict[str, Any]) -> None:
        self("apply", "--server-side", "-f", "-", manifest=yaml.safe_dump_all(documents))


class Resources:
    """Our custom resources in one namespace, through the admin client."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, plural: str, name: str, spec: dict[str, Any], kind: str) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        created = self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return cast(dict[str, Any], created)

    def get(self, plural: str, name: str, group: str = GROUP, version: str = VERSION) -> Any:
        try:
            return self.objects.get_namespaced_custom_object(
                group, version, self.namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_spec(self, plural: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        patched = self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            plural,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )
        return cast(dict[str, Any], patched)

    def delete(self, plural: str, name: str) -> None:
        self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def ready(self, plural: str, name: str) -> dict[str, Any] | None:
        """The Ready condition once it reflects the current generation."""
        obj = self.get(plural, name)
        if obj is None:
            return None
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if (
                condition["type"] == "Ready"
                and condition.get("observedGeneration") == obj["metadata"]["generation"]
            ):
                result: dict[str, Any] = condition
                return result
        return None

    def wait_ready(
        self,
        plural: str,
        name: str,
        status: str = "True",
        timeout: float = 30.0,
        *,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The Ready condition once it has `status`, and `reason` when given: a condition on the
        way with another reason (a transient failure the operator retries, such as the API
        server timing out) is passed over, and named if the wait times out."""

        def check() -> dict[str, Any] | None:
            condition = self.ready(plural, name)
            assert condition is not None, "no Ready condition yet"
            assert condition["status"] == status, condition
            assert reason is None or condition["reason"] == reason, condition
            return condition

        wanted = f"Ready={status}" + (f" ({reason})" if reason else "")
        return wait_until(check, timeout=timeout, message=f"{plural}/{name} {wanted}")

    def wait_gone(self, plural: str, name: str, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.get(plural, name) is None,
            timeout=timeout,
            message=f"{plural}/{name} deleted",
        )

    def events_for(self, name: str) -> list[Any]:
        events = client.CoreV1Api(self.objects.api_client).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return list(events.items)


def operator_kubeconfig(kubectl: Kubectl, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount allowed exactly the operator's RBAC rules: the
    namespaced ones in `namespace`, the cluster-scoped ones cluster-wide."""
    account = "realtimeorder-operator"
    role = f"realtimeorder-operator-{namespace}"
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    kubectl.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role, "namespace": namespace},
            "rules": OPERATOR_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [subject],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": OPERATOR_CLUSTER_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [subject],
        },
    )
    return account_kubeconfig(kubectl, namespace, account, path)


def account_kubeconfig(kubectl: Kubectl, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig acting as an existing ServiceAccount, as a pod running as it would."""
    # A TokenRequest through the API, not `kubectl create token`: kubectl first discovers every
    # API group (hundreds of third-party CRDs here), which costs seconds of CPU per call.
    request: Any = {"spec": {"expirationSeconds": 7200}}
    with config.new_client_from_config(config_file=str(kubectl.plane.kubeconfig)) as api:  # type: ignore[no-untyped-call]
        issued = client.CoreV1Api(api).create_namespaced_service_account_token(
            account, namespace, request
        )
    assert issued.status is not None, f"no token issued for {namespace}/{account}"
    token = issued.status.token
    admin = load_yaml(kubectl.plane.kubeconfig)
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {
                            "cluster": cluster["name"],
                            "user": account,
                            "namespace": namespace,
                        },
                    }
                ],
                "current-context": account,
            }
        )
    )
    return path


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    namespace: str
    health_port: int
    metrics_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def run_operator(
    kubeconfig: Path,
    log_path: Path,
    namespace: str,
    env: dict[str, str],
    start_timeout: float = 60.0,
) -> Iterator[OperatorProcess]:
    """Start `python -m realtimeorder_operator`; yield once its liveness endpoint answers."""
    health_port, metrics_port = free_port(), free_port()
    child_env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HEALTH_PORT": str(health_port),
        "METRICS_PORT": str(metrics_port),
        "RECONCILE_INTERVAL_SECONDS": "2",
        "AUTOSCALER_INTERVAL_SECONDS": "1",
        "RETRY_DELAY_SECONDS": "1",
        "KAFKA_TIMEOUT_SECONDS": "5",
        "PYTHONFAULTHANDLER": "1",
        **env,
    }
    child_env.pop("KUBERNETES_SERVICE_HOST", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "realtimeorder_operator"],
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    running = OperatorProcess(process, log_path, namespace, health_port, metrics_port)
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"operator exited with {process.returncode}:\n{running.log()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{health_port}/healthz", timeout=1
                ) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(healthy, timeout=start_timeout, message="operator liveness endpoint")
        yield running
    finally:
        running.stop()
        if process.returncode not in (0, -signal.SIGTERM):
            print(f"operator log ({log_path}):\n{running.log()[-5000:]}")


# ---- independent views of Kafka and RabbitMQ (not the operator's own clients) ----------------


def kafka_admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def topic_state(bootstrap: str, topic: str) -> tuple[int, dict[str, str]] | None:
    """(partition count, topic-level config overrides), or None if the topic does not exist."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        ConfigResource,
        ConfigSource,
        ResourceType,
    )

    admin = kafka_admin(bootstrap)
    metadata = admin.list_topics(timeout=10)
    if topic not in metadata.topics:
        return None
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=10)
    overrides = {
        name: entry.value
        for name, entry in entries.items()
        if getattr(entry.source, "value", entry.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    }
    return len(metadata.topics[topic].partitions), overrides


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    admin = kafka_admin(bootstrap)  # the futures need the client alive
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=20)


def delete_topic(bootstrap: str, topic: str) -> None:
    admin = kafka_admin(bootstrap)
    admin.delete_topics([topic])[topic].result(timeout=20)


class RabbitAdmin:
    """The management API as a test sees it (httpx, synchronous)."""

    def __init__(self, server: Any) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=server.management_url, auth=(server.user, server.password), timeout=10
        )
        self.amqp_url: str = server.amqp_url

    def queue(self, name: str) -> dict[str, Any] | None:
        response = self.http.get(f"/api/queues/%2F/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def declare(self, name: str, arguments: dict[str, Any]) -> None:
        self.http.put(
            f"/api/queues/%2F/{name}", json={"durable": True, "arguments": arguments}
        ).raise_for_status()

    def delete(self, name: str) -> None:
        self.http.delete(f"/api/queues/%2F/{name}")

    def purge(self, name: str) -> None:
        self.http.delete(f"/api/queues/%2F/{name}/contents").raise_for_status()

    def publish(self, queue: str, count: int, body: bytes = b"{}") -> None:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for _ in range(count):
                channel.basic_publish("", queue, body, mandatory=True)
        finally:
            connection.close()

    def reject_one(self, queue: str) -> bytes | None:
        """Take one message from `queue` and reject it without requeueing (a failed attempt)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            method, _properties, body = channel.basic_get(queue)
            if method is None or method.delivery_tag is None:
                return None
            channel.basic_reject(method.delivery_tag, requeue=False)
            return body
        finally:
            connection.close()

    def ready_messages(self, queue: str) -> int:
        """Messages ready in `queue`, counted over AMQP (the management API lags by seconds)."""
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
            return int(declared.method.message_count)
        finally:
            connection.close()
