"""Two real operator processes against the real API server, Kafka and RabbitMQ.

- `direct_namespace`: the default mode (Kafka Admin API, RabbitMQ management API).
- `managed_namespace`: STRIMZI_KAFKA_CLUSTER and RABBITMQ_TOPOLOGY_CLUSTER set, so the operator
  renders Strimzi KafkaTopics and topology Queues/Policies. Neither of those operators runs here:
  the tests play Strimzi's part by writing the KafkaTopic status themselves.

Each operator runs as its own ServiceAccount, bound to the rules in `support.OPERATOR_RULES`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from devstack.testing import KafkaServer, RabbitMQServer
from tests.k8s.controlplane import ControlPlane, control_plane
from tests.k8s.operator import support

SHARED_CRDS = support.ROOT.parent / "shared" / "k8s-crds"
THIRD_PARTY_CRDS = [
    SHARED_CRDS / "strimzi" / "043-Crd-kafkatopic.yaml",
    SHARED_CRDS / "rabbitmq-topology" / "rabbitmq.com_queues.yaml",
    SHARED_CRDS / "rabbitmq-topology" / "rabbitmq.com_policies.yaml",
]


@pytest.fixture(scope="session")
def operator_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with control_plane(tmp_path_factory.mktemp("operator-control-plane")) as plane:
        yield plane


@pytest.fixture(scope="session")
def kubectl(operator_control_plane: ControlPlane) -> support.Kubectl:
    kubectl = support.Kubectl(operator_control_plane)
    kubectl.install_crds(support.OPERATOR_CRDS + THIRD_PARTY_CRDS)
    return kubectl


@pytest.fixture(scope="session")
def kube(
    operator_control_plane: ControlPlane, kubectl: support.Kubectl
) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(operator_control_plane.kubeconfig), client_configuration=configuration
    )
    api = client.ApiClient(configuration)
    yield api
    api.close()  # type: ignore[no-untyped-call]


def _operator_namespace(
    kubectl: support.Kubectl, workdir: Path, namespace: str, env: dict[str, str]
) -> Iterator[str]:
    kubeconfig = support.operator_kubeconfig(kubectl, namespace, workdir / "kubeconfig")
    with support.run_operator(
        kubeconfig, workdir / "operator.log", {"WATCH_NAMESPACE": namespace, **env}
    ):
        yield namespace


def _backing_env(kafka: KafkaServer, rabbitmq: RabbitMQServer) -> dict[str, str]:
    return {
        "KAFKA_BROKER": kafka.bootstrap,
        "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
        "RABBITMQ_USER": rabbitmq.user,
        "RABBITMQ_PASSWORD": rabbitmq.password,
    }


@pytest.fixture(scope="session")
def direct_namespace(
    kubectl: support.Kubectl,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _operator_namespace(
        kubectl,
        tmp_path_factory.mktemp("operator-direct"),
        "operator-direct",
        _backing_env(kafka_server, rabbitmq_server),
    )


@pytest.fixture(scope="session")
def managed_namespace(
    kubectl: support.Kubectl,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    yield from _operator_namespace(
        kubectl,
        tmp_path_factory.mktemp("operator-managed"),
        "operator-managed",
        {
            **_backing_env(kafka_server, rabbitmq_server),
            "STRIMZI_KAFKA_CLUSTER": support.STRIMZI_CLUSTER,
            "RABBITMQ_TOPOLOGY_CLUSTER": support.RABBITMQ_CLUSTER,
        },
    )


@pytest.fixture
def direct(kube: client.ApiClient, direct_namespace: str) -> support.Resources:
    return support.Resources(kube, direct_namespace)


@pytest.fixture
def managed(kube: client.ApiClient, managed_namespace: str) -> support.Resources:
    return support.Resources(kube, managed_namespace)


@pytest.fixture(scope="session")
def rabbit(rabbitmq_server: RabbitMQServer) -> support.RabbitAdmin:
    return support.RabbitAdmin(rabbitmq_server)
