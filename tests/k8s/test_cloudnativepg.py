"""PostgreSQL in `postgresql.mode: cloudnativepg`: a CloudNativePG Cluster behind its Pooler.

The profile `ci/cloudnativepg-values.yaml` goes through every check of test_chart.py (lint,
references, server-side dry run with the CloudNativePG CRDs). These tests add what the mode
itself promises:

- the services reach PostgreSQL through the Pooler's Service, each as its own managed role
  owning only its schema (created by `postInitApplicationSQL`), with the password of its
  basic-auth Secret; the application user (CloudNativePG's Secret, or the one named by
  `postgresql.auth.existingSecret`, handed to `bootstrap.initdb`) owns the database, and no
  bundled PostgreSQL renders;
- the Pooler pools sessions (the services LISTEN, hold session advisory locks and prepare
  statements) and tracks `search_path`, which each service sets in its startup options;
- NetworkPolicies admit exactly the components that use PostgreSQL to the Pooler, and only the
  Pooler, the operator's status probe and the other instances to the Cluster;
- a render of the chart's defaults switched to this mode, with an existing Secret, is accepted
  by a real API server with the CRDs installed; impossible values are refused.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from kubernetes.dynamic import DynamicClient

from tests.k8s.conftest import KubeCluster
from tests.k8s.test_chart import (
    CHART,
    PYTHON_SERVICES,
    RELEASE,
    WORKERS,
    Manifest,
    RenderError,
    by_kind,
    chart_values,
    component,
    dry_run_apply,
    dynamic,
    env_of,
    helm_template,
    named,
    pod_labels,
    pod_spec,
    selects,
    worker_values,
)

__all__ = ["dynamic"]  # the session fixture, shared with test_chart.py

PROFILE = CHART / "ci" / "cloudnativepg-values.yaml"
NAMESPACE = "chart-cnpg"
CLUSTER = f"{RELEASE}-postgresql"
POOLER = f"{RELEASE}-postgresql-pooler"


def render(helm: Path, *extra: str, profile: bool = True) -> list[Manifest]:
    return helm_template(helm, [PROFILE] if profile else [], NAMESPACE, *extra)


def database_users() -> set[str]:
    """The components whose `uses` lists postgresql (their pods get the uses-postgresql label)."""
    values = chart_values()
    services = {s for s in PYTHON_SERVICES if "postgresql" in values[s]["uses"]}
    return services | {w for w in WORKERS if "postgresql" in worker_values(values, w)["uses"]}


def admitted(rule: dict[str, Any], pods: dict[str, dict[str, str]]) -> set[str]:
    """The release's components a NetworkPolicy ingress rule admits by pod selector."""
    return {
        name
        for peer in rule["from"]
        if "podSelector" in peer and "namespaceSelector" not in peer
        for name, labels in pods.items()
        if selects(peer["podSelector"], labels)
    }


@pytest.mark.k8s
def test_services_reach_the_pooler_each_as_its_own_role(helm: Path) -> None:
    docs = render(helm)
    data = named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    (pooler,) = by_kind(docs, "Pooler")
    (cluster,) = by_kind(docs, "Cluster")
    assert data["DB_HOST"] == pooler["metadata"]["name"] == POOLER
    assert data["DB_PORT"] == "5432", "PgBouncer listens on 5432 behind the Pooler's Service"
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert (initdb["database"], initdb["owner"]) == (data["DB_NAME"], data["DB_USER"])
    assert "secret" not in initdb, "CloudNativePG generates the application user's password"

    users = database_users()
    assert users >= {"auth", "orders", "inventory", "notifications", *WORKERS}
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    for name in users:
        role = "notifications" if name in WORKERS else name
        env = env_of(pod_spec(deployments[name])["containers"][0])
        assert env["DB_USER"]["value"] == role, name
        secret = env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": f"{CLUSTER}-{role}", "key": "password"}, name
        assert roles[role]["passwordSecret"] == {"name": secret["name"]}
        assert roles[role]["login"] is True
        assert (roles[role]["superuser"], roles[role]["createrole"]) == (False, False)
        stored = named(docs, "Secret", secret["name"])
        assert stored["type"] == "kubernetes.io/basic-auth", "what CloudNativePG reads"
        assert base64.b64decode(stored["data"]["username"]).decode() == role
    assert set(roles) == {"auth", "orders", "inventory", "notifications", "analytics"}
    sql = initdb["postInitApplicationSQL"]
    grants = [statement for statement in sql if statement.startswith("GRANT")]
    for role in roles:
        assert f"CREATE SCHEMA {role} AUTHORIZATION {role}" in sql
        assert f'GRANT CONNECT ON DATABASE "realtimeorder" TO {role}' in grants
    assert len(grants) == len(roles), "CONNECT only: no role may create a schema"
    gateway = env_of(pod_spec(deployments["gateway"])["containers"][0])
    assert "DB_PASSWORD" not in gateway

    # Nothing of the bundled PostgreSQL: no StatefulSet, Service or its superuser's Secret.
    assert not [d for d in by_kind(docs, "StatefulSet") if component(d) == "postgresql"]
    assert not [d for d in by_kind(docs, "Service") if component(d) == "postgresql"]
    assert {
        d["metadata"]["name"] for d in by_kind(docs, "Secret") if component(d) == "postgresql"
    } == {f"{CLUSTER}-{role}" for role in roles}


@pytest.mark.k8s
def test_the_cluster_replicates_and_the_pooler_keeps_sessions_and_schemas(helm: Path) -> None:
    docs = render(helm)
    cluster = named(docs, "Cluster", CLUSTER)
    pooler = named(docs, "Pooler", POOLER)
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["storage"] == {"size": "20Gi"}
    assert cluster["spec"]["affinity"]["enablePodAntiAffinity"] is True
    assert pooler["spec"]["cluster"] == {"name": CLUSTER}
    assert pooler["spec"]["type"] == "rw", "every write goes to the primary"
    assert pooler["spec"]["instances"] == 2
    bouncer = pooler["spec"]["pgbouncer"]
    assert bouncer["poolMode"] == "session"
    assert bouncer["parameters"]["track_extra_parameters"] == "search_path"
    # The pooler's server connections fit under the instances' max_connections.
    pool_size = int(bouncer["parameters"]["default_pool_size"])
    max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    assert pooler["spec"]["instances"] * pool_size < max_connections

    # The chart's defaults: 3 instances; search_path is added to the parameters a user tracks.
    defaults = render(
        helm,
        "--set",
        "postgresql.mode=cloudnativepg",
        "--set-string",
        "postgresql.cloudnativepg.pooler.parameters.track_extra_parameters=IntervalStyle",
        profile=False,
    )
    assert named(defaults, "Cluster", CLUSTER)["spec"]["instances"] == 3
    tracked = named(defaults, "Pooler", POOLER)["spec"]["pgbouncer"]["parameters"]
    assert tracked["track_extra_parameters"] == "IntervalStyle,search_path"


@pytest.mark.k8s
def test_an_existing_secret_bootstraps_the_application_user(helm: Path) -> None:
    docs = render(helm, "--set", "postgresql.auth.existingSecret=shop-database")
    initdb = named(docs, "Cluster", CLUSTER)["spec"]["bootstrap"]["initdb"]
    assert initdb["secret"] == {"name": "shop-database"}
    orders = next(d for d in by_kind(docs, "Deployment") if component(d) == "orders")
    env = env_of(pod_spec(orders)["containers"][0])
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{CLUSTER}-orders",
        "key": "password",
    }, "the services connect as their own roles, never as the database's owner"


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["postgresql.auth.existingSecret=db,postgresql.auth.existingSecretPasswordKey=pw"],
            "existingSecretPasswordKey must be password",
        ),
        (["postgresql.persistence.enabled=false"], "set postgresql.persistence.enabled"),
        (["postgresql.mode=patroni"], "postgresql.mode"),
        (["postgresql.cloudnativepg.instances=0"], "instances"),
    ],
)
def test_values_that_cannot_work_are_refused(helm: Path, args: list[str], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(helm, *[part for arg in args for part in ("--set", arg)])


@pytest.mark.k8s
def test_network_policies_admit_the_services_to_the_pooler_and_the_pooler_to_the_cluster(
    helm: Path,
) -> None:
    docs = render(helm)
    pods = pod_labels(docs)
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}

    pooler = policies[POOLER]
    assert pooler["spec"]["podSelector"] == {"matchLabels": {"cnpg.io/poolerName": POOLER}}
    bouncer, metrics = pooler["spec"]["ingress"]
    assert bouncer["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert admitted(bouncer, pods) == database_users()
    assert metrics["ports"] == [{"port": 9127, "protocol": "TCP"}]
    assert admitted(metrics, pods) == set(), "only Prometheus scrapes the pooler"

    cluster = policies[CLUSTER]
    instances = {"cnpg.io/cluster": CLUSTER, "cnpg.io/podRole": "instance"}
    assert cluster["spec"]["podSelector"] == {"matchLabels": instances}
    postgres, status, peers, exporter = cluster["spec"]["ingress"]
    assert postgres["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert postgres["from"] == [{"podSelector": {"matchLabels": {"cnpg.io/poolerName": POOLER}}}]
    assert admitted(postgres, pods) == set(), "no service connects past the pooler"
    assert status["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert status["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}}}
    ]
    assert "ports" not in peers
    assert peers["from"] == [{"podSelector": {"matchLabels": instances}}]
    assert exporter["ports"] == [{"port": 9187, "protocol": "TCP"}]

    # The PodMonitors scrape exactly the pods those rules open their exporters on.
    monitors = {m["metadata"]["name"]: m for m in by_kind(docs, "PodMonitor")}
    assert monitors[CLUSTER]["spec"]["selector"] == {"matchLabels": instances}
    assert monitors[POOLER]["spec"]["selector"] == pooler["spec"]["podSelector"]

    # Without monitoring the exporters stay closed; without NetworkPolicies none renders.
    quiet = render(helm, "--set", "monitoring.enabled=false")
    quiet_policies = {p["metadata"]["name"]: p for p in by_kind(quiet, "NetworkPolicy")}
    assert len(quiet_policies[POOLER]["spec"]["ingress"]) == 1
    assert len(quiet_policies[CLUSTER]["spec"]["ingress"]) == 3
    assert not by_kind(quiet, "PodMonitor")
    open_ = render(helm, "--set", "networkPolicy.enabled=false")
    assert not by_kind(open_, "NetworkPolicy")


@pytest.mark.k8s
def test_the_api_server_accepts_the_defaults_in_cloudnativepg_mode(
    kube: KubeCluster, dynamic: DynamicClient, helm: Path
) -> None:
    """The chart's own defaults switched to this mode (the profile is dry-run by test_chart.py),
    with a bootstrap Secret, against the CloudNativePG CRDs."""
    assert {"clusters.postgresql.cnpg.io", "poolers.postgresql.cnpg.io"} <= set(kube.crds)
    docs = render(
        helm,
        "--set",
        "postgresql.mode=cloudnativepg,postgresql.auth.existingSecret=shop-database",
        profile=False,
    )
    assert by_kind(docs, "Cluster")
    assert by_kind(docs, "Pooler")
    problems = dry_run_apply(kube, dynamic, docs, NAMESPACE)
    assert not problems, "\n".join(problems)
