"""Two real operator processes against the session's API server (the `kube` fixture of
tests/k8s/conftest.py, which installs our CRDs and the Strimzi and RabbitMQ ones), Kafka and
RabbitMQ.

- `direct_operator`: the default mode (Kafka Admin API, RabbitMQ management API).
- `refused_operator`: the default mode with a RabbitMQ password the broker refuses, giving up
  on a deletion's cleanup after two attempts (CLEANUP_ATTEMPTS): what happens when a backing
  service refuses the operator.
- `managed_operator`: STRIMZI_KAFKA_CLUSTER and RABBITMQ_TOPOLOGY_CLUSTER set, so the operator
  renders Strimzi KafkaTopics and topology Queues/Policies. Neither of those operators runs here:
  the tests play Strimzi's part by writing the KafkaTopic status themselves.

Each operator watches a namespace of its own as its own ServiceAccount, bound to
`support.OPERATOR_RULES` / `OPERATOR_CLUSTER_RULES`, the rules the chart grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from devstack.testing import KafkaServer, RabbitMQServer
from tests.k8s.conftest import KubeCluster
from tests.k8s.operator import support


@pytest.fixture(scope="session")
def kube_api(kube: KubeCluster) -> client.ApiClient:
    return kube.api


@pytest.fixture(scope="session")
def kubectl(kube: KubeCluster) -> support.Kubectl:
    return support.Kubectl(kube.control_plane)


def _operator(
    kubectl: support.Kubectl, workdir: Path, namespace: str, env: dict[str, str]
) -> Iterator[support.OperatorProcess]:
    kubeconfig = support.operator_kubeconfig(kubectl, namespace, workdir / "kubeconfig")
    with support.run_operator(
        kubeconfig, workdir / "operator.log", namespace, {"WATCH_NAMESPACE": namespace, **env}
    ) as running:
        yield running


def _backing_env(kafka: KafkaServer, rabbitmq: RabbitMQServer) -> dict[str, str]:
    return {
        "KAFKA_BROKER": kafka.bootstrap,
        "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
        "RABBITMQ_USER": rabbitmq.user,
        "RABBITMQ_PASSWORD": rabbitmq.password,
    }


@pytest.fixture(scope="session")
def direct_operator(
    kubectl: support.Kubectl,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[support.OperatorProcess]:
    yield from _operator(
        kubectl,
        tmp_path_factory.mktemp("operator-direct"),
        "operator-direct",
        _backing_env(kafka_server, rabbitmq_server),
    )


@pytest.fixture(scope="session")
def managed_operator(
    kubectl: support.Kubectl,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[support.OperatorProcess]:
    yield from _operator(
        kubectl,
        tmp_path_factory.mktemp("operator-managed"),
        "operator-managed",
        {
            **_backing_env(kafka_server, rabbitmq_server),
            "STRIMZI_KAFKA_CLUSTER": support.STRIMZI_CLUSTER,
            "RABBITMQ_TOPOLOGY_CLUSTER": support.RABBITMQ_CLUSTER,
        },
    )


@pytest.fixture(scope="session")
def refused_operator(
    kubectl: support.Kubectl,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[support.OperatorProcess]:
    yield from _operator(
        kubectl,
        tmp_path_factory.mktemp("operator-refused"),
        "operator-refused",
        {
            **_backing_env(kafka_server, rabbitmq_server),
            "RABBITMQ_PASSWORD": "not-the-password",
            "CLEANUP_ATTEMPTS": "2",
        },
    )


@pytest.fixture
def refused(
    kube_api: client.ApiClient, refused_operator: support.OperatorProcess
) -> support.Resources:
    return support.Resources(kube_api, refused_operator.namespace)


@pytest.fixture
def direct(
    kube_api: client.ApiClient, direct_operator: support.OperatorProcess
) -> support.Resources:
    return support.Resources(kube_api, direct_operator.namespace)


@pytest.fixture
def managed(
    kube_api: client.ApiClient, managed_operator: support.OperatorProcess
) -> support.Resources:
    return support.Resources(kube_api, managed_operator.namespace)


@pytest.fixture(scope="session")
def rabbit(rabbitmq_server: RabbitMQServer) -> support.RabbitAdmin:
    return support.RabbitAdmin(rabbitmq_server)
