"""The Helm chart, rendered with every values profile and checked against a real API server.

- `helm lint --strict` with each profile;
- every rendering: hardened pods, probes and graceful termination (services and workers),
  references that resolve
  (Secrets, ConfigMaps, ServiceAccounts, Service selectors), NetworkPolicies that admit only the
  callers, operator RBAC equal to what the operator's own tests grant it, alerts promtool
  accepts, values the schema or the templates refuse;
- every rendering (and the dev loop's value sets from skaffold.yaml, and k8s/) applied with a
  server-side dry run to the session's API server, with our CRDs and the third-party CRDs
  installed (see conftest.py);
- a real `helm install` and `helm upgrade`: generated secrets survive the upgrade.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from services import registry
from services.kit import order_events
from services.kit.keys import SigningKey, verifying_keys
from services.kit.order_events import ALL_TOPICS
from tests.k8s.conftest import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "realtimeorder"
RELEASE = "realtimeorder"
PROFILES = sorted((CHART / "ci").glob("*-values.yaml"))
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

Manifest = dict[str, Any]


class RenderError(AssertionError):
    """helm template refused the values; the message is helm's."""


def helm_template(
    helm: Path, values: Iterable[Path] = (), namespace: str = "default", *extra: str
) -> list[Manifest]:
    """`helm template` of the chart as the release `realtimeorder` in `namespace`."""
    args = [str(helm), "template", RELEASE, str(CHART), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    result = subprocess.run([*args, *extra], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def profile_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


def skaffold_value_sets() -> dict[str, list[Path]]:
    """The value files skaffold.yaml passes to helm: its default, and each profile's patch."""
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text(encoding="utf-8"))
    release = skaffold["deploy"]["helm"]["releases"][0]
    sets = {"skaffold": [ROOT / f for f in release["valuesFiles"]]}
    for profile in skaffold.get("profiles", []):
        for patch in profile.get("patches", []):
            if patch["path"] == "/deploy/helm/releases/0/valuesFiles" and patch["op"] == "replace":
                sets[f"skaffold-{profile['name']}"] = [ROOT / f for f in patch["value"]]
    return sets


def by_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: Iterable[Manifest], kind: str, name: str) -> Manifest:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} rendered")


def component(doc: Manifest) -> str:
    labels: dict[str, str] = doc["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component", "")


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container.get("env", [])}


def referenced_secrets(workload: Manifest) -> set[str]:
    names: set[str] = set()
    spec = pod_spec(workload)
    for container in containers(workload):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
    return names


def referenced_config_maps(workload: Manifest) -> set[str]:
    names: set[str] = set()
    for container in containers(workload):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                names.add(source["configMapRef"]["name"])
    for volume in pod_spec(workload).get("volumes", []):
        if "configMap" in volume:
            names.add(volume["configMap"]["name"])
    return names


def rule_triples(rules: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """RBAC rules as (apiGroup, resource, verb) triples, to compare rule sets however grouped."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def existing_secret_names(values: Any) -> set[str]:
    """Every `existingSecret` named anywhere in a values file."""
    found: set[str] = set()
    if isinstance(values, dict):
        for key, value in values.items():
            if key == "existingSecret" and isinstance(value, str) and value:
                found.add(value)
            else:
                found |= existing_secret_names(value)
    elif isinstance(values, list):
        for item in values:
            found |= existing_secret_names(item)
    return found


# The chart deploys every service of services/registry.py whose package is written (checked by
# test_the_chart_deploys_the_services_of_the_registry), and web apps that only it knows.
PYTHON_SERVICES = registry.runnable()
WEB_APPS = ("user-app", "admin-dashboard")


def consumed_topics() -> set[str]:
    """The topics some service consumes (its EVENT_HANDLERS), so dead-letters to."""
    consumed: set[str] = set()
    for service in PYTHON_SERVICES:
        try:
            handlers = importlib.import_module(f"services.{service}.handlers")
        except ModuleNotFoundError:
            continue
        consumed |= set(getattr(handlers, "EVENT_HANDLERS", {}))
    return consumed


SEED_QUEUES = ("email.notifications", "sms.notifications", "push.notifications")
# The notification workers: component -> (channel, port, work queue), as services/cli.py and
# services/notifications/topology.py run them.
WORKERS = {
    "email-worker": ("email", 3011, "email.notifications"),
    "sms-worker": ("sms", 3012, "sms.notifications"),
    "push-worker": ("push", 3013, "push.notifications"),
}
# uvicorn's graceful shutdown (services/cli.py) must fit in the grace period after the preStop.
UVICORN_GRACEFUL_SECONDS = 20
# A worker's graceful shutdown lasts up to its provider timeout plus this (services/cli.py).
WORKER_GRACEFUL_EXTRA_SECONDS = 10
FIELD_MANAGER = "realtimeorder-chart-tests"
# The services and workers serve /metrics on this port (METRICS_PORT), apart from their traffic.
METRICS_PORT = 9100

VALUE_SETS: dict[str, list[Path]] = {profile_id(p): [p] for p in PROFILES} | skaffold_value_sets()


def namespace_for(name: str) -> str:
    return f"chart-{name}"


@pytest.fixture(scope="session")
def rendered(helm: Path) -> Any:
    """rendered(name) -> the manifests of a value set of VALUE_SETS, rendered once a session."""
    cache: dict[str, list[Manifest]] = {}

    def get(name: str) -> list[Manifest]:
        if name not in cache:
            cache[name] = helm_template(helm, VALUE_SETS[name], namespace_for(name))
        return cache[name]

    return get


def workloads(docs: Iterable[Manifest]) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] in WORKLOAD_KINDS]


def pod_labels(docs: Iterable[Manifest]) -> dict[str, dict[str, str]]:
    """Pod template labels of each workload, by component."""
    return {
        component(w): w["spec"]["template"]["metadata"]["labels"]
        for w in workloads(docs)
        if component(w)
    }


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted: dict[str, str] = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


def worker_values(values: dict[str, Any], worker: str) -> dict[str, Any]:
    block: dict[str, Any] = values["workers"][WORKERS[worker][0]]
    return block


# ---- helm lint -------------------------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_strict(helm: Path, name: str) -> None:
    args = [str(helm), "lint", "--strict", str(CHART), "--namespace", namespace_for(name)]
    for path in VALUE_SETS[name]:
        args += ["--values", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- what every rendering must hold ------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_are_hardened(rendered: Any, name: str) -> None:
    docs = rendered(name)
    assert workloads(docs), "nothing rendered"
    for workload in workloads(docs):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod_security = spec.get("securityContext", {})
        assert spec.get("enableServiceLinks") is False, where
        # Only the operator and its uninstall hook call the Kubernetes API.
        if component(workload) not in ("operator", "operator-uninstall"):
            assert spec.get("automountServiceAccountToken") is False, where
        for container in containers(workload):
            security = container.get("securityContext", {})
            assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
            seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("privileged", False) is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert security.get("readOnlyRootFilesystem") is True, where
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: no writable /tmp"
            resources = container.get("resources", {})
            assert resources.get("requests", {}).get("memory"), f"{where}: no memory request"
            assert resources.get("limits", {}).get("memory"), f"{where}: no memory limit"


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_services_probe_health_and_drain_before_stopping(rendered: Any, name: str) -> None:
    deployments = {component(d): d for d in by_kind(rendered(name), "Deployment")}
    for service in PYTHON_SERVICES:
        deployment = deployments[service]
        (container,) = pod_spec(deployment)["containers"]
        assert container["args"] == ["serve", service]
        port = container["ports"][0]
        assert port["name"] == "http"
        assert env_of(container)["PORT"]["value"] == str(port["containerPort"])
        assert env_of(container)["METRICS_PORT"]["value"] == str(METRICS_PORT)
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert grace >= sleep + UVICORN_GRACEFUL_SECONDS, f"{service}: {grace}s grace"
    if "operator" in deployments:
        (container,) = pod_spec(deployments["operator"])["containers"]
        assert container["command"] == ["python", "-m", "realtimeorder_operator"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        health = next(p for p in container["ports"] if p["name"] == "health")
        assert env_of(container)["HEALTH_PORT"]["value"] == str(health["containerPort"])
        assert deployments["operator"]["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_workers_run_their_channel_probe_health_and_finish_before_stopping(
    rendered: Any, name: str
) -> None:
    docs = rendered(name)
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    services = {component(s) for s in by_kind(docs, "Service")}
    defaults = chart_values()["notificationQueues"]
    queues = {q["spec"]["queueName"]: q["spec"] for q in by_kind(docs, "NotificationQueue")}
    for worker, (channel, port, queue) in WORKERS.items():
        deployment = deployments[worker]
        spec = pod_spec(deployment)
        (container,) = spec["containers"]
        assert container["args"] == ["worker", channel]
        assert container["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ]
        env = env_of(container)
        assert env["PORT"]["value"] == str(port)
        assert env["METRICS_PORT"]["value"] == str(METRICS_PORT)
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert worker not in services, "nothing calls a worker"

        # The services' configuration (APP_ENV, LOG_LEVEL, DB_*) and its own connections; no
        # signing key, Redis or Kafka.
        assert [s["configMapRef"]["name"] for s in container["envFrom"]] == [f"{RELEASE}-env"]
        assert {
            "DB_PASSWORD",
            "RABBITMQ_URL",
            "WORKER_PREFETCH",
            "PROVIDER_TIMEOUT_SECONDS",
        } <= set(env), worker
        assert not {"JWT_PUBLIC_KEY", "JWT_PRIVATE_KEY_FILE", "REDIS_URL"} & set(env), worker
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["realtimeorder.io/uses-postgresql"] == "true"
        assert "realtimeorder.io/uses-kafka" not in labels

        # It retries and gives up as its queue does (the defaults when no NotificationQueue is
        # rendered: the service then declares the queues with them).
        rules = queues.get(queue, defaults)
        assert env["MAX_ATTEMPTS"]["value"] == str(rules["maxAttempts"]), worker
        delays = ",".join(str(d) for d in rules["retryDelaysSeconds"])
        assert env["RETRY_DELAYS_SECONDS"]["value"] == delays, worker

        # On SIGTERM it finishes, records and acknowledges the messages in hand.
        grace = spec["terminationGracePeriodSeconds"]
        timeout = float(env["PROVIDER_TIMEOUT_SECONDS"]["value"])
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert grace >= max(30, sleep + timeout + WORKER_GRACEFUL_EXTRA_SECONDS), worker
    email = env_of(pod_spec(deployments["email-worker"])["containers"][0])
    assert {"SMTP_PORT", "SMTP_TLS"} <= set(email)
    assert not any(v.startswith(("SMS_", "PUSH_")) for v in email)


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_reference_resolves(rendered: Any, name: str) -> None:
    docs = rendered(name)
    values = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in VALUE_SETS[name]]
    secrets = {d["metadata"]["name"] for d in by_kind(docs, "Secret")}
    secrets |= {f"{d['metadata']['name']}-default-user" for d in by_kind(docs, "RabbitmqCluster")}
    secrets |= {f"{d['metadata']['name']}-app" for d in by_kind(docs, "Cluster")}
    # Strimzi's User Operator writes each KafkaUser's credentials to a Secret of its name.
    secrets |= {d["metadata"]["name"] for d in by_kind(docs, "KafkaUser")}
    secrets |= set().union(*(existing_secret_names(v) for v in values))
    config_maps = {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}
    accounts = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")} | {"default"}
    deployments = {d["metadata"]["name"] for d in by_kind(docs, "Deployment")}
    for workload in workloads(docs):
        where = f"{workload['kind']} {workload['metadata']['name']}"
        assert referenced_secrets(workload) <= secrets, where
        assert referenced_config_maps(workload) <= config_maps, where
        assert pod_spec(workload).get("serviceAccountName", "default") in accounts, where

    labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads(docs)]
    services: dict[str, Manifest] = {}
    for service in by_kind(docs, "Service"):
        services[service["metadata"]["name"]] = service
        selector = {"matchLabels": service["spec"]["selector"]}
        assert any(selects(selector, pod) for pod in labels), service["metadata"]["name"]
    for budget in by_kind(docs, "PodDisruptionBudget"):
        assert any(selects(budget["spec"]["selector"], pod) for pod in labels)
    rabbitmq_clusters = {d["metadata"]["name"] for d in by_kind(docs, "RabbitmqCluster")}
    cnpg_pods = {("cnpg.io/cluster", d["metadata"]["name"]) for d in by_kind(docs, "Cluster")}
    cnpg_pods |= {("cnpg.io/poolerName", d["metadata"]["name"]) for d in by_kind(docs, "Pooler")}
    for policy in by_kind(docs, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if component(policy) == "rabbitmq":  # pods of the RabbitMQ cluster operator
            assert selector["app.kubernetes.io/name"] in rabbitmq_clusters
            continue
        if any(key.startswith("cnpg.io/") for key in selector):  # the CloudNativePG operator's
            assert cnpg_pods & set(selector.items()), policy["metadata"]["name"]
            continue
        assert any(selects(policy["spec"]["podSelector"], pod) for pod in labels)
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for scaler in by_kind(docs, "WorkerAutoscaler"):
        assert scaler["spec"]["targetRef"]["name"] in deployments

    def has_port(service_name: str, port: int | str) -> bool:
        ports = services[service_name]["spec"]["ports"]
        return any(port in (p["port"], p.get("name")) for p in ports)

    for ingress in by_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert has_port(backend["name"], backend["port"]["name"]), backend
    for route in by_kind(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                assert has_port(ref["name"], ref["port"]), ref
    for binding in by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding"):
        role_kind = binding["roleRef"]["kind"]
        assert binding["roleRef"]["name"] in {
            d["metadata"]["name"] for d in by_kind(docs, role_kind)
        }
        for subject in binding["subjects"]:
            assert subject["name"] in accounts


# ---- behaviour of particular values -----------------------------------------------------------


@pytest.mark.k8s
def test_network_policies_admit_only_the_callers(rendered: Any) -> None:
    docs = rendered("default")
    pods = pod_labels(docs)

    def admitted(target: str) -> set[str]:
        (policy,) = [p for p in by_kind(docs, "NetworkPolicy") if component(p) == target]
        callers: set[str] = set()
        for rule in policy["spec"]["ingress"]:
            if "from" not in rule:
                callers.add("anyone")
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    callers |= {
                        c for c, labels in pods.items() if selects(peer["podSelector"], labels)
                    }
        return callers

    values = chart_values()
    for service in PYTHON_SERVICES:
        policy = values[service]["networkPolicy"]
        public = {"anyone"} if policy["allowExternal"] else set()
        assert admitted(service) == set(policy["allowFrom"]) | public, service
    assert admitted("gateway") == {"anyone"}
    assert admitted("auth") == {"gateway"}
    assert admitted("orders") == {"gateway"}
    assert admitted("inventory") == {"gateway", "orders"}
    assert admitted("notifications") == {"gateway"}
    assert admitted("analytics") == {"gateway"}
    assert admitted("operator") == set()
    assert all(admitted(worker) == set() for worker in WORKERS), "nothing calls a worker"

    def users(backing: str) -> set[str]:
        services = {s for s in PYTHON_SERVICES if backing in values[s]["uses"]}
        return services | {w for w in WORKERS if backing in worker_values(values, w)["uses"]}

    assert admitted("postgresql") == users("postgresql") >= {"auth", "orders", "inventory"}
    assert users("postgresql") >= set(WORKERS), "workers record their attempts"
    assert admitted("redis") == users("redis") >= {"gateway", "auth", "orders", "inventory"}

    # RabbitMQ: AMQP from its users, the management API from the operators, nothing else but
    # the cluster's own nodes.
    (rabbitmq,) = [p for p in by_kind(docs, "NetworkPolicy") if component(p) == "rabbitmq"]
    amqp, management, nodes = rabbitmq["spec"]["ingress"]

    def callers(rule: dict[str, Any]) -> set[str]:
        return {
            c
            for peer in rule["from"]
            if "podSelector" in peer and "namespaceSelector" not in peer
            for c, labels in pods.items()
            if selects(peer["podSelector"], labels)
        }

    assert amqp["ports"] == [{"port": 5672, "protocol": "TCP"}]
    assert callers(amqp) == users("rabbitmq") >= {"notifications", *WORKERS}
    assert "operator" not in callers(amqp), "the operator speaks the management API only"
    assert "analytics" not in callers(amqp), "the queue monitor reads the management API only"
    assert management["ports"] == [{"port": 15672, "protocol": "TCP"}]
    assert callers(management) == users("rabbitmq-management") | {"operator"}
    assert users("rabbitmq-management") == {"analytics"}
    assert [p for p in management["from"] if "namespaceSelector" in p] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "rabbitmq-system"}}}
    ]
    assert "ports" not in nodes
    assert callers(nodes) == set()
    assert nodes["from"] == [{"podSelector": rabbitmq["spec"]["podSelector"]}]
    assert not [
        p for p in by_kind(rendered("minimal"), "NetworkPolicy") if component(p) == "rabbitmq"
    ]

    (kafka,) = by_kind(docs, "Kafka")
    listeners = {item["name"]: item for item in kafka["spec"]["kafka"]["listeners"]}

    def kafka_clients(listener: str) -> set[str]:
        return {
            c
            for peer in listeners[listener]["networkPolicyPeers"]
            for c, labels in pods.items()
            if selects(peer["podSelector"], labels)
        }

    assert set(listeners) == {"scram"}, "no listener without authentication"
    assert kafka_clients("scram") == users("kafka") | {"operator"}
    assert users("kafka") >= {"orders", "inventory"}


@pytest.mark.k8s
def test_the_chart_deploys_the_services_of_the_registry(helm: Path) -> None:
    """Each written service of services/registry.py is a component of the same name and port,
    found by the others through its registry variable; the web apps are the chart's own."""
    docs = helm_template(
        helm, (), "default", "--set", "userApp.enabled=true,adminDashboard.enabled=true"
    )
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    services = {component(s): s for s in by_kind(docs, "Service")}
    apps = set(deployments) - {"operator"} - set(WORKERS)
    served = {c for c in apps if pod_spec(deployments[c])["containers"][0].get("args")}
    assert served == set(PYTHON_SERVICES)
    assert apps - served == set(WEB_APPS)
    assert not set(WEB_APPS) & {service.name for service in registry.SERVICES}

    urls: dict[str, str] = {}
    for service in map(registry.service, PYTHON_SERVICES):
        (container,) = pod_spec(deployments[service.name])["containers"]
        assert container["args"] == ["serve", service.name]
        assert container["ports"][0]["containerPort"] == service.default_port, service.name
        assert services[service.name]["spec"]["ports"][0]["port"] == service.default_port
        if service.url_variable is not None:
            urls[service.url_variable] = f"http://{RELEASE}-{service.name}:{service.default_port}"
    data = named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    assert {k: v for k, v in data.items() if k.endswith("_SERVICE_URL")} == urls


@pytest.mark.k8s
def test_metrics_scrapes_are_admitted_only_with_monitoring(rendered: Any) -> None:
    for name, expected in (("default", False), ("monitoring-gateway-api", True)):
        policies = [p for p in by_kind(rendered(name), "NetworkPolicy") if component(p) == "auth"]
        (policy,) = policies
        peers = [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]
        assert any("namespaceSelector" in peer for peer in peers) is expected, name
    monitored = rendered("monitoring-gateway-api")
    monitors = {component(m) for m in by_kind(monitored, "ServiceMonitor")}
    assert monitors == {*PYTHON_SERVICES, "operator"}
    assert not by_kind(rendered("default"), "ServiceMonitor")

    # Workers have no Service: a PodMonitor scrapes their pods, and names the job after the
    # Deployment, as the services' jobs are named after theirs (the alerts select on it).
    pod_monitors = {component(m): m for m in by_kind(monitored, "PodMonitor")}
    assert set(pod_monitors) == set(WORKERS)
    pods = pod_labels(monitored)
    for worker, monitor in pod_monitors.items():
        assert selects(monitor["spec"]["selector"], pods[worker])
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
        assert endpoint["relabelings"] == [
            {"targetLabel": "job", "replacement": f"{RELEASE}-{worker}"}
        ]
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        (policy,) = [p for p in by_kind(monitored, "NetworkPolicy") if component(p) == worker]
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert rule["from"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            }
        ]
    assert not by_kind(rendered("default"), "PodMonitor")


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_metrics_are_served_apart_and_never_routed(rendered: Any, name: str) -> None:
    """Every service and worker serves /metrics on METRICS_PORT (port `metrics`), which only
    the monitors and scrape annotations name; no Ingress or HTTPRoute reaches it."""
    docs = rendered(name)
    python = {*PYTHON_SERVICES, *WORKERS}
    for deployment in by_kind(docs, "Deployment"):
        if component(deployment) not in python:
            continue
        (container,) = pod_spec(deployment)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == METRICS_PORT != ports["http"], component(deployment)
        assert env_of(container)["METRICS_PORT"]["value"] == str(METRICS_PORT)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    for service in services.values():
        if component(service) in PYTHON_SERVICES:
            names = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
            assert names == {"http": "http", "metrics": "metrics"}
    routed: list[tuple[str, Any]] = []
    for ingress in by_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                routed.append((backend["name"], backend["port"]["name"]))
    for route in by_kind(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            routed += [(ref["name"], ref["port"]) for ref in rule["backendRefs"]]
    for service_name, port in routed:
        (target,) = [
            p for p in services[service_name]["spec"]["ports"] if port in (p["name"], p["port"])
        ]
        assert target["targetPort"] == "http", f"{service_name} routed to {target}"
    for monitor in by_kind(docs, "ServiceMonitor") + by_kind(docs, "PodMonitor"):
        endpoints = monitor["spec"].get("endpoints") or monitor["spec"]["podMetricsEndpoints"]
        assert [e["port"] for e in endpoints] == ["metrics"]


@pytest.mark.k8s
def test_replicas_spread_over_nodes_and_zones(rendered: Any, helm: Path) -> None:
    docs = rendered("default")
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    gateway = pod_spec(deployments["gateway"])
    selector = {"matchLabels": deployments["gateway"]["spec"]["selector"]["matchLabels"]}
    (preferred,) = gateway["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": selector,
    }
    (spread,) = gateway["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert (spread["whenUnsatisfiable"], spread["labelSelector"]) == ("ScheduleAnyway", selector)
    # A worker scaled by its WorkerAutoscaler may run several replicas too.
    assert "affinity" in pod_spec(deployments["email-worker"])
    # One replica: nothing to spread; an affinity of one's own replaces the default.
    minimal = {component(d): d for d in by_kind(rendered("minimal"), "Deployment")}
    assert not [c for c, d in minimal.items() if "affinity" in pod_spec(d)]
    own = helm_template(helm, (), "default", "--set", "gateway.affinity.nodeAffinity.x=y")
    gateway = pod_spec(named(own, "Deployment", f"{RELEASE}-gateway"))
    assert gateway["affinity"] == {"nodeAffinity": {"x": "y"}}
    assert "topologySpreadConstraints" not in gateway


@pytest.mark.k8s
def test_operator_rbac_is_exactly_what_the_operator_needs(rendered: Any) -> None:
    # The operator's tests run it with exactly these rules: the chart must grant the same.
    from tests.k8s.operator.support import OPERATOR_CLUSTER_RULES, OPERATOR_RULES

    needed = rule_triples(OPERATOR_RULES)
    everywhere = {t for t in needed if t[0] not in ("kafka.strimzi.io", "rabbitmq.com")}
    strimzi = {t for t in needed if t[0] == "kafka.strimzi.io"}
    topology = {t for t in needed if t[0] == "rabbitmq.com"}
    expected = {
        "operators": everywhere | strimzi | topology,
        "default": everywhere | strimzi,
        "bundled": everywhere,
    }
    for name, triples in expected.items():
        docs = rendered(name)
        role = named(docs, "Role", f"{RELEASE}-operator")
        assert role["metadata"]["namespace"] == namespace_for(name)
        assert rule_triples(role["rules"]) == triples, name
        observe = named(docs, "ClusterRole", f"{RELEASE}-operator-{namespace_for(name)}-observe")
        assert rule_triples(observe["rules"]) == rule_triples(OPERATOR_CLUSTER_RULES)

    # Reconciling every namespace: one ClusterRole with the same rules, no Role.
    docs = rendered("monitoring-gateway-api")
    assert not [r for r in by_kind(docs, "Role") if component(r) == "operator"]
    cluster_role = named(docs, "ClusterRole", f"{RELEASE}-operator-chart-monitoring-gateway-api")
    assert rule_triples(cluster_role["rules"]) == everywhere, "Admin API mode: no KafkaTopics"
    (operator,) = [d for d in by_kind(docs, "Deployment") if component(d) == "operator"]
    (container,) = pod_spec(operator)["containers"]
    assert env_of(container)["WATCH_NAMESPACE"]["value"] == ""


HOOK_ANNOTATIONS = ("helm.sh/hook", "helm.sh/hook-weight", "helm.sh/hook-delete-policy")


@pytest.mark.k8s
def test_uninstall_hook_deletes_the_custom_resources_while_the_operator_runs(
    rendered: Any, helm: Path
) -> None:
    """A pre-delete hook (test_uninstall.py runs one for real) with RBAC of its own, created
    before its Job and allowed only to list, delete and patch the release's custom resources."""
    docs = rendered("default")
    name = f"{RELEASE}-operator-uninstall"
    hooked = [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    assert {(d["kind"], d["metadata"]["name"]) for d in hooked} == {
        (kind, name) for kind in ("ServiceAccount", "Role", "RoleBinding", "Job")
    }
    weights = {}
    for doc in hooked:
        hook, weight, policy = (doc["metadata"]["annotations"][a] for a in HOOK_ANNOTATIONS)
        assert (hook, policy) == ("pre-delete", "before-hook-creation,hook-succeeded")
        weights[doc["kind"]] = int(weight)
    assert weights["Job"] > max(weights["ServiceAccount"], weights["Role"], weights["RoleBinding"])
    plurals = ["workerautoscalers", "notificationqueues", "eventtopics"]
    assert named(docs, "Role", name)["rules"] == [
        {
            "apiGroups": ["realtimeorder.io"],
            "resources": plurals,
            "verbs": ["list", "delete", "patch"],
        }
    ]
    job = named(docs, "Job", name)
    assert pod_spec(job)["serviceAccountName"] == name
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == [
        "python",
        "-m",
        "realtimeorder_operator.uninstall",
        f"--namespace={namespace_for('default')}",
        f"--selector=app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name=realtimeorder",
        f"--kinds={','.join(plurals)}",
        "--timeout=120",
        "--skip-cleanup-after-timeout",
    ]
    # The selector finds every custom resource of the release.
    selector = dict(pair.split("=") for pair in container["command"][4].split("=", 1)[1].split(","))
    for kind in ("EventTopic", "NotificationQueue", "WorkerAutoscaler"):
        assert all(
            selects({"matchLabels": selector}, d["metadata"]["labels"]) for d in by_kind(docs, kind)
        )
    assert job["spec"]["activeDeadlineSeconds"] > 120

    # EventTopics kept on uninstall are left to Helm's resource policy; no operator, no hook.
    kept = helm_template(helm, (), "default", "--set", "eventTopics.keepOnUninstall=true")
    assert (
        "--kinds=workerautoscalers,notificationqueues"
        in pod_spec(named(kept, "Job", name))["containers"][0]["command"]
    )
    assert all(
        t["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for t in by_kind(kept, "EventTopic")
    )
    assert not by_kind(rendered("minimal"), "Job")


@pytest.mark.k8s
def test_operator_modes_reach_its_settings(rendered: Any) -> None:
    def operator_env(name: str) -> dict[str, Any]:
        docs = rendered(name)
        (operator,) = [d for d in by_kind(docs, "Deployment") if component(d) == "operator"]
        return env_of(pod_spec(operator)["containers"][0])

    operators = operator_env("operators")
    assert operators["STRIMZI_KAFKA_CLUSTER"]["value"] == f"{RELEASE}-kafka"
    assert operators["RABBITMQ_TOPOLOGY_CLUSTER"]["value"] == f"{RELEASE}-rabbitmq"
    assert operators["WATCH_NAMESPACE"]["value"] == namespace_for("operators")
    # Topology mode: its own user, which only reads queue figures (test_rabbitmq_users.py).
    user_ref = operators["RABBITMQ_USER"]["valueFrom"]["secretKeyRef"]
    assert user_ref == {"name": f"{RELEASE}-rabbitmq-operator", "key": "username"}
    # Management mode declares and deletes queues: the cluster's administrator.
    user_ref = operator_env("default")["RABBITMQ_USER"]["valueFrom"]["secretKeyRef"]
    assert user_ref == {"name": f"{RELEASE}-rabbitmq-default-user", "key": "username"}

    bundled = operator_env("bundled")
    assert "STRIMZI_KAFKA_CLUSTER" not in bundled
    assert "RABBITMQ_TOPOLOGY_CLUSTER" not in bundled
    assert bundled["RABBITMQ_MANAGEMENT_URL"]["value"] == "http://dev-rabbitmq:15672"
    assert bundled["RABBITMQ_USER"]["value"] == "realtimeorder"


@pytest.mark.k8s
def test_backing_services_reach_the_services(rendered: Any) -> None:
    docs = rendered("default")
    (config_map,) = [
        c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-env")
    ]
    data = config_map["data"]
    # The operator's EventTopics own the topics; the services create none.
    assert data["KAFKA_CREATE_TOPICS"] == "false"
    minimal_env = named(rendered("minimal"), "ConfigMap", f"{RELEASE}-env")["data"]
    assert minimal_env["KAFKA_CREATE_TOPICS"] == "true", "no EventTopics: the services create"
    namespace = namespace_for("default")
    assert data["KAFKA_BROKER"] == f"{RELEASE}-kafka-kafka-bootstrap.{namespace}.svc:9094"
    assert data["DB_HOST"] == f"{RELEASE}-postgresql"
    assert data["APP_ENV"] == "production"
    assert data["INVENTORY_SERVICE_URL"] == f"http://{RELEASE}-inventory:3003"
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    orders = env_of(pod_spec(deployments["orders"])["containers"][0])
    # The Redis URL is assembled from the password variable defined just before it.
    names = list(orders)
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    assert orders["REDIS_URL"]["value"] == f"redis://:$(REDIS_PASSWORD)@{RELEASE}-redis:6379/0"
    gateway = env_of(pod_spec(deployments["gateway"])["containers"][0])
    assert "DB_PASSWORD" not in gateway, "the gateway does not use PostgreSQL"
    # Notifications publishes to RabbitMQ; the operator's NotificationQueues own the queues
    # when the chart renders them, and the service declares them itself when it does not.
    notifications = env_of(pod_spec(deployments["notifications"])["containers"][0])
    assert "RABBITMQ_URL" in notifications
    assert notifications["DECLARE_QUEUES"]["value"] == "false"
    # It checks the retry queues the NotificationQueues declare, which are named by their delays.
    assert notifications["RETRY_DELAYS_SECONDS"]["value"] == "5,30,300"
    assert notifications["MAX_ATTEMPTS"]["value"] == "5"
    assert "RABBITMQ_URL" not in orders
    minimal = {component(d): d for d in by_kind(rendered("minimal"), "Deployment")}
    alone = env_of(pod_spec(minimal["notifications"])["containers"][0])
    assert alone["DECLARE_QUEUES"]["value"] == "true"

    external = {component(d): d for d in by_kind(rendered("external"), "Deployment")}
    auth = env_of(pod_spec(external["auth"])["containers"][0])
    assert auth["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "realtimeorder-database"
    assert auth["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "realtimeorder-redis"
    assert auth["JWT_PUBLIC_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "realtimeorder-jwt",
        "key": "verifying-key.pem",
    }
    signing = next(v for v in pod_spec(external["auth"])["volumes"] if "secret" in v)
    assert signing["secret"]["secretName"] == "realtimeorder-jwt"
    assert [item["key"] for item in signing["secret"]["items"]] == ["signing-key.pem"]
    assert auth["ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "realtimeorder-admin"
    assert not by_kind(rendered("external"), "Secret"), (
        "every secret is brought by the platform team"
    )


@pytest.mark.k8s
def test_analytics_reads_prometheus_the_brokers_and_its_consumer_group(
    rendered: Any, helm: Path
) -> None:
    """The analytics service (services/analytics/settings.py): Prometheus for the live figures,
    the RabbitMQ management API for the queue monitor (its URL, and RABBITMQ_URL for the user
    and virtual host), its consumer group, and the gateway's ANALYTICS_SERVICE_URL."""

    def analytics_env(docs: list[Manifest]) -> dict[str, Any]:
        return env_of(pod_spec(named(docs, "Deployment", f"{RELEASE}-analytics"))["containers"][0])

    docs = rendered("default")
    env = analytics_env(docs)
    namespace = namespace_for("default")
    assert env["PROMETHEUS_URL"]["value"] == "http://prometheus-operated.monitoring.svc:9090"
    assert env["KAFKA_CONSUMER_GROUP"]["value"] == "analytics"
    assert (
        env["PROMETHEUS_TIMEOUT_SECONDS"]["value"],
        env["MONITOR_TIMEOUT_SECONDS"]["value"],
    ) == (
        "2",
        "5",
    )
    assert env["RABBITMQ_MANAGEMENT_URL"]["value"] == (
        f"http://{RELEASE}-rabbitmq.{namespace}.svc:15672"
    )
    assert env["RABBITMQ_URL"]["value"].startswith("amqp://$(RABBITMQ_USERNAME):")
    assert {"DB_PASSWORD", "REDIS_URL", "JWT_PUBLIC_KEY"} <= set(env)
    assert "RABBITMQ_MANAGEMENT_USER" not in env, "the cluster's default user is RABBITMQ_URL's"
    labels = named(docs, "Deployment", f"{RELEASE}-analytics")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert labels["realtimeorder.io/uses-rabbitmq-management"] == "true"
    assert "realtimeorder.io/uses-rabbitmq" not in labels
    data = named(docs, "ConfigMap", f"{RELEASE}-env")["data"]
    assert data["ANALYTICS_SERVICE_URL"] == f"http://{RELEASE}-analytics:3005"

    # An external broker: its management URL and the management user named in the values.
    bundled = analytics_env(rendered("bundled"))
    assert bundled["RABBITMQ_MANAGEMENT_URL"]["value"] == "http://dev-rabbitmq:15672"
    assert bundled["RABBITMQ_MANAGEMENT_USER"]["value"] == "realtimeorder"
    assert bundled["RABBITMQ_MANAGEMENT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-external-rabbitmq",
        "key": "rabbitmq-password",
    }
    # Only a URL: the service derives the management API from RABBITMQ_URL.
    minimal = analytics_env(rendered("minimal"))
    assert "RABBITMQ_MANAGEMENT_URL" not in minimal
    assert "RABBITMQ_URL" in minimal

    own = helm_template(
        helm,
        (),
        "default",
        "--set",
        "analytics.prometheusUrl=http://prometheus.example:9090,analytics.consumerGroup=reports",
    )
    env = analytics_env(own)
    assert env["PROMETHEUS_URL"]["value"] == "http://prometheus.example:9090"
    assert env["KAFKA_CONSUMER_GROUP"]["value"] == "reports"
    off = helm_template(helm, (), "default", "--set", "analytics.enabled=false")
    assert not [d for d in off if component(d) == "analytics"]
    assert "ANALYTICS_SERVICE_URL" not in named(off, "ConfigMap", f"{RELEASE}-env")["data"]


@pytest.mark.k8s
def test_tracing_endpoint_reaches_every_service_and_worker(rendered: Any) -> None:
    """tracing.otlpEndpoint: every service and worker exports to it under its component's name,
    with the namespace and pod as resource attributes (the API server accepts the downward-API
    variable, see test_server_side_dry_run[monitoring-gateway-api]); unset, no OTEL_ variable."""
    name = "monitoring-gateway-api"
    python = {*PYTHON_SERVICES, *WORKERS}
    traced = {component(d): d for d in by_kind(rendered(name), "Deployment")}
    assert python <= set(traced)
    for component_name in python:
        env = env_of(pod_spec(traced[component_name])["containers"][0])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == (
            "http://otel-collector.observability.svc:4318"
        )
        assert env["OTEL_SERVICE_NAME"]["value"] == component_name
        assert env["OTEL_K8S_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "1", "every order unless told otherwise"
        names = list(env)
        assert names.index("OTEL_K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
        attributes = dict(
            pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(",")
        )
        assert attributes == {
            "k8s.namespace.name": namespace_for(name),
            "k8s.pod.name": "$(OTEL_K8S_POD_NAME)",
            "service.namespace": RELEASE,
            "deployment.environment": "production",
            "k8s.cluster.name": "production",
        }
    for profile in ("default", "bundled", "external"):
        for deployment in by_kind(rendered(profile), "Deployment"):
            env = env_of(pod_spec(deployment)["containers"][0])
            assert not [v for v in env if v.startswith("OTEL_")], deployment["metadata"]["name"]


@pytest.mark.k8s
def test_tracing_sample_ratio_is_the_samplers_argument(helm: Path) -> None:
    """tracing.sampleRatio reaches every traced component as the parent-based ratio sampler's
    argument; the schema refuses a ratio outside 0..1."""
    endpoint = ("--set", "tracing.otlpEndpoint=http://collector:4318")
    sampled = helm_template(helm, (), "default", *endpoint, "--set", "tracing.sampleRatio=0.05")
    arguments = {
        env_of(pod_spec(d)["containers"][0])["OTEL_TRACES_SAMPLER_ARG"]["value"]
        for d in by_kind(sampled, "Deployment")
        if component(d) in {*PYTHON_SERVICES, *WORKERS}
    }
    assert arguments == {"0.05"}
    with pytest.raises(RenderError) as refused:
        helm_template(helm, (), "default", *endpoint, "--set", "tracing.sampleRatio=2")
    assert "sampleRatio" in str(refused.value)


@pytest.mark.k8s
def test_extra_env_overrides_what_the_chart_sets(
    kube: KubeCluster, dynamic: DynamicClient, helm: Path
) -> None:
    """An extraEnv entry of a name the chart sets replaces it in its place (a $(VAR) after it
    still sees it), other entries are appended, no name appears twice (the API server would
    warn, and server-side apply keep one); the same for the operator's extraEnv."""
    namespace = "chart-extra-env"
    docs = helm_template(
        helm,
        (),
        namespace,
        "--set-json",
        'orders.extraEnv=[{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": '
        '{"name": "redis-elsewhere", "key": "pw"}}}, {"name": "METRICS_PORT", "value": "9200"}, '
        '{"name": "DB_POOL_MAX", "value": "30"}]',
        "--set-json",
        'workers.email.extraEnv=[{"name": "SMTP_PORT", "value": "2525"}]',
        "--set-json",
        'operator.extraEnv=[{"name": "RECONCILE_INTERVAL_SECONDS", "value": "5"}]',
    )
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    orders = pod_spec(deployments["orders"])["containers"][0]["env"]
    names = [item["name"] for item in orders]
    assert len(names) == len(set(names)), names
    env = env_of({"env": orders})
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "redis-elsewhere"
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    assert env["METRICS_PORT"]["value"] == "9200"
    assert names[-1] == "DB_POOL_MAX"
    email = env_of(pod_spec(deployments["email-worker"])["containers"][0])
    assert email["SMTP_PORT"]["value"] == "2525"
    operator = env_of(pod_spec(deployments["operator"])["containers"][0])
    assert operator["RECONCILE_INTERVAL_SECONDS"]["value"] == "5"
    for deployment in deployments.values():
        names = [item["name"] for item in pod_spec(deployment)["containers"][0].get("env", [])]
        assert len(names) == len(set(names)), deployment["metadata"]["name"]
    problems = dry_run_apply(kube, dynamic, by_kind(docs, "Deployment"), namespace)
    assert not problems, "\n".join(problems)


def assert_a_token_key_pair(data: dict[str, str]) -> None:
    """The Secret holds an Ed25519 private key and a certificate of its public key."""
    private_pem = base64.b64decode(data["private.pem"]).decode()
    public_pem = base64.b64decode(data["public.pem"]).decode()
    assert "BEGIN CERTIFICATE" in public_pem
    assert verifying_keys(public_pem).keys() == {SigningKey.from_pem(private_pem).kid}


@pytest.mark.k8s
@pytest.mark.parametrize("name", ["default", "external", "operators"])
def test_only_auth_holds_the_token_signing_key(rendered: Any, name: str) -> None:
    """Auth alone mounts the private key (a volume of that one key, read by
    JWT_PRIVATE_KEY_FILE); every service verifies with the public key; no worker gets either."""
    values = chart_values()
    docs = rendered(name)
    secret = f"{RELEASE}-jwt"
    private_key = "signing-key.pem" if name == "external" else values["jwt"]["privateKeyKey"]
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    assert set(PYTHON_SERVICES) <= set(deployments)
    for name_, deployment in deployments.items():
        spec = pod_spec(deployment)
        env = env_of(spec["containers"][0])
        mounted = [
            item["key"]
            for volume in spec.get("volumes", [])
            if volume.get("secret", {}).get("secretName") == secret
            for item in volume["secret"].get("items", [])
        ]
        if name_ == "auth":
            assert mounted == [private_key]
            path = env["JWT_PRIVATE_KEY_FILE"]["value"]
            mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
            assert path.startswith(mounts["token-signing-key"] + "/")
        else:
            assert not mounted, name_
            assert "JWT_PRIVATE_KEY_FILE" not in env, name_
            refs = [e.get("valueFrom", {}).get("secretKeyRef", {}) for e in env.values()]
            assert not [r for r in refs if r.get("key") == private_key], name_
        if name_ in PYTHON_SERVICES:
            assert env["JWT_PUBLIC_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret, name_
        else:
            assert "JWT_PUBLIC_KEY" not in env, name_
    if name != "external":
        assert_a_token_key_pair(named(docs, "Secret", secret)["data"])


@pytest.mark.k8s
@pytest.mark.parametrize("name", ["default", "operators"])
def test_each_service_connects_to_the_bundled_postgresql_as_its_own_role(
    rendered: Any, name: str
) -> None:
    """One role per service (templates/postgresql/roles.yaml): its own basic-auth Secret, applied
    by the PostgreSQL pod's `roles` container, which the pod's readiness waits for; the workers
    use notifications' role; nothing connects as the superuser (tests/k8s/test_postgresql_roles.py
    runs the script on a real PostgreSQL)."""
    docs = rendered(name)
    roles = ("auth", "orders", "inventory", "notifications", "analytics")
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    for name_, deployment in deployments.items():
        env = env_of(pod_spec(deployment)["containers"][0])
        if "DB_PASSWORD" not in env:
            continue
        role = "notifications" if name_ in WORKERS else name_
        assert env["DB_USER"]["value"] == role
        assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": f"{RELEASE}-postgresql-{role}",
            "key": "password",
        }
    used = {
        env_of(pod_spec(d)["containers"][0]).get("DB_USER", {}).get("value")
        for d in deployments.values()
    }
    assert used - {None} == set(roles)
    for role in roles:
        secret = named(docs, "Secret", f"{RELEASE}-postgresql-{role}")
        assert secret["type"] == "kubernetes.io/basic-auth"
        assert base64.b64decode(secret["data"]["username"]).decode() == role
    statefulset = named(docs, "StatefulSet", f"{RELEASE}-postgresql")
    spec = statefulset["spec"]["template"]["spec"]
    (sidecar,) = [c for c in spec["containers"] if c["name"] == "roles"]
    assert env_of(sidecar)["SERVICE_ROLES"]["value"].split() == list(roles)
    assert sidecar["readinessProbe"]["exec"]["command"] == ["test", "-f", "/tmp/roles-applied"]
    (passwords,) = [v for v in spec["volumes"] if v["name"] == "role-passwords"]
    sources = passwords["projected"]["sources"]
    assert [s["secret"]["items"] for s in sources] == [
        [{"key": "password", "path": role}] for role in roles
    ]


def emitted_topics(service: str) -> set[str]:
    """The topics a service's outbox writes: the topic constants its service.py names."""
    source = (ROOT / "services" / service / "service.py").read_text()
    constants = {
        name: value
        for name, value in vars(order_events).items()
        if isinstance(value, str) and value in ALL_TOPICS
    }
    return {value for name, value in constants.items() if re.search(rf"\b{name}\b", source)}


def handled_topics(service: str) -> set[str]:
    handlers = importlib.import_module(f"services.{service}.handlers")
    return set(handlers.EVENT_HANDLERS)


@pytest.mark.k8s
@pytest.mark.parametrize("name", ["default", "operators"])
def test_each_service_reaches_kafka_as_its_own_user_with_acls_for_its_topics(
    rendered: Any, name: str
) -> None:
    """The release's Strimzi Kafka: SCRAM-SHA-512 on the listener the services use, simple
    authorization, and a KafkaUser per service whose ACLs are exactly the topics its outbox
    writes, the topics its EVENT_HANDLERS consume with their dead-letter topics, and its
    consumer group. No listener admits a client without a user, and no user is a super user."""
    docs = rendered(name)
    kafka = by_kind(docs, "Kafka")[0]["spec"]["kafka"]
    listeners = {listener["name"]: listener for listener in kafka["listeners"]}
    assert set(listeners) == {"scram"}
    assert listeners["scram"]["authentication"] == {"type": "scram-sha-512"}
    assert kafka["authorization"] == {"type": "simple"}, "simple authorization, no super user"
    users = {u["metadata"]["name"]: u for u in by_kind(docs, "KafkaUser")}
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    kafka_clients = [s for s in ("orders", "inventory", "notifications", "analytics")]
    assert set(users) == {f"{RELEASE}-kafka-{s}" for s in [*kafka_clients, "operator"]}
    for service in kafka_clients:
        user = users[f"{RELEASE}-kafka-{service}"]
        granted = kafka_acls(user)
        consumed = handled_topics(service)
        expected = {("topic", t): {"Write", "Describe"} for t in emitted_topics(service)}
        expected |= {("topic", t): {"Read", "Describe"} for t in consumed}
        expected |= {("topic", f"{t}.dlq"): {"Write", "Describe"} for t in consumed}
        group = chart_values()[service].get("consumerGroup", service)
        expected[("group", group)] = {"Read", "Describe"}
        if service == "analytics":  # its overview of every topic and consumer group
            expected |= {("topic", "*"): {"Describe"}, ("group", "*"): {"Describe"}}
        assert granted == expected, service

        assert_kafka_user_env(deployments[service], user)
    assert "KAFKA_SASL_USERNAME" not in env_of(pod_spec(deployments["auth"])["containers"][0])


def kafka_acls(user: Manifest) -> dict[tuple[str, str], set[str]]:
    """A KafkaUser's ACLs as {(resource type, name): operations}; every one literal."""
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    granted: dict[tuple[str, str], set[str]] = {}
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert resource["patternType"] == "literal"
        granted.setdefault((resource["type"], resource["name"]), set()).update(acl["operations"])
    return granted


def assert_kafka_user_env(deployment: Manifest, user: Manifest) -> None:
    """The workload connects to the listener `scram` as `user`, its password from its Secret."""
    env = env_of(pod_spec(deployment)["containers"][0])
    assert env["KAFKA_BROKER"]["value"].endswith(":9094")
    assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_PLAINTEXT"
    assert env["KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"]["value"] == user["metadata"]["name"]
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": user["metadata"]["name"],
        "key": "password",
    }


# What realtimeorder_operator/kafka_admin.py asks the broker, and the ACL each request needs:
# kafkaLag autoscaling reads topic metadata and end offsets (Metadata, ListOffsets: Describe on
# the topic) and the group's committed offsets (FindCoordinator, OffsetFetch: Describe on the
# group); EventTopics through the Admin API also create topics (Create), add partitions
# (Alter), read and change their config (DescribeConfigs, AlterConfigs) and delete them.
OPERATOR_LAG_ACLS = {("topic", "*"): {"Describe"}, ("group", "*"): {"Describe"}}
OPERATOR_ADMIN_ACLS = OPERATOR_LAG_ACLS | {
    ("topic", "*"): {"Describe", "Create", "Alter", "DescribeConfigs", "AlterConfigs", "Delete"}
}


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("default", OPERATOR_LAG_ACLS),  # Strimzi mode: KafkaTopics, no topic administration
        ("operators", OPERATOR_LAG_ACLS),
        ("monitoring-gateway-api", OPERATOR_ADMIN_ACLS),  # every namespace: Admin API mode
    ],
)
def test_the_operator_reaches_kafka_as_its_own_user(
    rendered: Any, name: str, expected: dict[tuple[str, str], set[str]]
) -> None:
    """The operator connects to the release's Strimzi Kafka like the services, as a KafkaUser
    of its own whose ACLs are what it does in its Kafka mode (no super user)."""
    docs = rendered(name)
    user = named(docs, "KafkaUser", f"{RELEASE}-kafka-operator")
    assert component(user) == "operator"
    assert kafka_acls(user) == expected
    (operator,) = [d for d in by_kind(docs, "Deployment") if component(d) == "operator"]
    assert_kafka_user_env(operator, user)
    strimzi_mode = "STRIMZI_KAFKA_CLUSTER" in env_of(pod_spec(operator)["containers"][0])
    assert strimzi_mode == (expected == OPERATOR_LAG_ACLS)
    assert not [u for u in by_kind(rendered("minimal"), "KafkaUser")]


@pytest.mark.k8s
def test_rabbitmq_topology_mode_gives_each_component_its_own_user(rendered: Any) -> None:
    """operator.rabbitmqMode topology: a User and a Permission per component that uses RabbitMQ,
    limited to its queues on "/", its credentials replacing the default user's before
    RABBITMQ_URL uses them; the operator only reads queue figures, as it renders Queues instead
    of declaring them; management mode keeps the default user."""
    docs = rendered("operators")
    users = {u["metadata"]["name"]: u for u in by_kind(docs, "User")}
    permissions = {
        p["spec"]["userReference"]["name"]: p["spec"] for p in by_kind(docs, "Permission")
    }
    expected = {
        "notifications": ("^amq\\.default$", "^$"),
        "email-worker": ("^amq\\.default$", "^email\\.notifications$"),
        "sms-worker": ("^amq\\.default$", "^sms\\.notifications$"),
        "push-worker": ("^amq\\.default$", "^push\\.notifications$"),
        "analytics": ("^$", "^$"),
        "operator": ("^$", "^$"),
    }
    assert set(users) == set(permissions) == {f"{RELEASE}-rabbitmq-{n}" for n in expected}
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    for name, (write, read) in expected.items():
        user = f"{RELEASE}-rabbitmq-{name}"
        assert users[user]["spec"]["importCredentialsSecret"] == {"name": user}
        monitors = name in ("analytics", "operator")
        assert users[user]["spec"]["tags"] == (["monitoring"] if monitors else [])
        assert permissions[user]["vhost"] == "/"
        assert permissions[user]["permissions"] == {"configure": "^$", "write": write, "read": read}
        env = pod_spec(deployments[name])["containers"][0]["env"]
        names = [item["name"] for item in env]
        variables = env_of({"env": env})
        assert variables["RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user
        if name == "operator":  # the management API's user, no AMQP URL
            assert variables["RABBITMQ_USER"]["valueFrom"]["secretKeyRef"]["name"] == user
            assert "RABBITMQ_URL" not in variables
            continue
        assert names.index("RABBITMQ_PASSWORD") < names.index("RABBITMQ_URL")
    assert not by_kind(rendered("default"), "User"), "management mode: the default user"


@pytest.mark.k8s
def test_renders_without_a_cluster_are_stable_with_existing_secrets(helm: Path) -> None:
    """GitOps tools render with no cluster to `lookup` in: generated secrets change on every
    render (the README says so), and naming existing Secrets instead makes every render equal."""
    generated = [helm_template(helm, (), "default") for _ in range(2)]
    jwt = [named(docs, "Secret", f"{RELEASE}-jwt")["data"] for docs in generated]
    assert jwt[0] != jwt[1], "without a cluster, lookup finds nothing and a new key is made"

    gitops = (
        "jwt.existingSecret=platform-jwt,postgresql.auth.existingSecret=platform-postgresql,"
        "postgresql.auth.existingRoleSecrets=true,redis.auth.existingSecret=platform-redis"
    )
    first, second = (helm_template(helm, (), "default", "--set", gitops) for _ in range(2))
    assert first == second
    assert not by_kind(first, "Secret")


@pytest.mark.k8s
def test_external_kafka_tls_and_sasl_reach_its_clients(
    kube: KubeCluster, dynamic: DynamicClient, helm: Path
) -> None:
    """externalKafka.tls/sasl become the librdkafka settings as KAFKA_* variables and a mounted
    CA on every component that uses Kafka and on the operator, nowhere else; a plaintext or
    Strimzi Kafka gets none of these (its services connect as SCRAM users of their own)."""
    namespace = "chart-kafka-security"
    docs = helm_template(
        helm,
        [CHART / "ci" / "external-values.yaml"],
        namespace,
        "--set",
        "externalKafka.tls.enabled=true,externalKafka.tls.caSecret=kafka-ca,"
        "externalKafka.sasl.mechanism=SCRAM-SHA-512,externalKafka.sasl.username=realtimeorder,"
        "externalKafka.sasl.existingSecret=kafka-user",
    )
    values = chart_values()
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    kafka_users = {s for s in PYTHON_SERVICES if "kafka" in values[s]["uses"]} | {"operator"}
    for name, deployment in deployments.items():
        (container,) = pod_spec(deployment)["containers"]
        env = env_of(container)
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        if name not in kafka_users:
            assert not [v for v in env if v.startswith("KAFKA_S")], name
            assert "kafka-ca" not in mounts, name
            continue
        assert env["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL", name
        assert env["KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"]["value"] == "realtimeorder"
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "kafka-user",
            "key": "kafka-password",
        }
        assert env["KAFKA_SSL_CA_LOCATION"]["value"] == "/etc/realtimeorder/kafka-ca/ca.crt"
        assert mounts["kafka-ca"]["mountPath"] == "/etc/realtimeorder/kafka-ca"
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "kafka-ca"
    problems = dry_run_apply(kube, dynamic, by_kind(docs, "Deployment"), namespace)
    assert not problems, "\n".join(problems)

    # TLS alone; a plaintext external Kafka: nothing; the release's Strimzi Kafka: each service's
    # own SCRAM user (test_each_service_reaches_kafka_as_its_own_user_with_acls_for_its_topics).
    tls = helm_template(
        helm,
        [CHART / "ci" / "external-values.yaml"],
        namespace,
        "--set",
        "externalKafka.tls.enabled=true",
    )
    orders = env_of(pod_spec(named(tls, "Deployment", f"{RELEASE}-orders"))["containers"][0])
    assert orders["KAFKA_SECURITY_PROTOCOL"]["value"] == "SSL"
    assert "KAFKA_SSL_CA_LOCATION" not in orders, "the image's CAs"
    plain = helm_template(helm, [CHART / "ci" / "external-values.yaml"], namespace)
    strimzi = helm_template(helm, (), namespace)
    for deployment in by_kind(plain, "Deployment"):
        env = env_of(pod_spec(deployment)["containers"][0])
        assert not [v for v in env if v.startswith("KAFKA_S")], deployment["metadata"]["name"]
    for deployment in by_kind(strimzi, "Deployment"):
        env = env_of(pod_spec(deployment)["containers"][0])
        protocol = env.get("KAFKA_SECURITY_PROTOCOL", {}).get("value", "PLAINTEXT")
        assert protocol in ("PLAINTEXT", "SASL_PLAINTEXT"), deployment["metadata"]["name"]
    with pytest.raises(
        RenderError, match=r"sasl\.username and externalKafka\.sasl\.existingSecret"
    ):
        helm_template(
            helm,
            [CHART / "ci" / "external-values.yaml"],
            namespace,
            "--set",
            "externalKafka.sasl.mechanism=PLAIN",
        )


@pytest.mark.k8s
def test_topics_queues_and_scalers_come_from_values(rendered: Any) -> None:
    docs = rendered("default")
    topics = {t["spec"]["topicName"]: t for t in by_kind(docs, "EventTopic")}
    # One EventTopic per topic the services publish, and a dead-letter topic per topic they
    # consume: nothing missing, nothing no service uses.
    consumed = consumed_topics()
    assert consumed <= set(ALL_TOPICS)
    assert "inventory.reservation-expired" in consumed
    assert set(topics) == {*ALL_TOPICS, *(f"{t}.dlq" for t in consumed)}
    assert topics["order.created"]["spec"]["partitions"] == 3
    assert topics["order.created.dlq"]["spec"]["partitions"] == 1
    assert topics["order.created.dlq"]["spec"]["config"]["retention.ms"] == "2592000000"
    queues = {q["spec"]["queueName"]: q["spec"] for q in by_kind(docs, "NotificationQueue")}
    assert set(queues) == set(SEED_QUEUES)
    assert all(q["deadLetterQueue"] == "notifications.dlq" for q in queues.values())

    operators = rendered("operators")
    assert all(t["spec"]["replicationFactor"] == 3 for t in by_kind(operators, "EventTopic"))
    deployments = {component(d): d for d in by_kind(operators, "Deployment")}
    # The WorkerAutoscaler owns inventory's replicas: Helm must not reset them on upgrade.
    assert "replicas" not in deployments["inventory"]["spec"]
    assert deployments["orders"]["spec"]["replicas"] == 2
    scaler = named(operators, "WorkerAutoscaler", f"{RELEASE}-inventory-order-created-lag")
    assert scaler["spec"]["targetRef"] == {"kind": "Deployment", "name": f"{RELEASE}-inventory"}
    assert scaler["spec"]["trigger"]["kafkaLag"]["consumerGroup"] == "inventory"

    autoscaled = by_kind(rendered("monitoring-gateway-api"), "Deployment")
    assert all("replicas" not in d["spec"] for d in autoscaled if component(d) in PYTHON_SERVICES)


@pytest.mark.k8s
def test_each_worker_is_scaled_on_its_queue_depth(rendered: Any) -> None:
    docs = rendered("default")
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}
    for worker, (_, _, queue) in WORKERS.items():
        target = f"{RELEASE}-{worker}"
        assert named(docs, "WorkerAutoscaler", target)["spec"] == {
            "targetRef": {"kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
            "cooldownSeconds": 300,
            "stabilizationSeconds": 300,
            "trigger": {"queueDepth": {"queue": queue, "vhost": "/", "messagesPerReplica": 500}},
        }
        # The operator patches the scale subresource; with no replicas in the manifest, an
        # upgrade leaves what it set (test_install_and_upgrade_... checks it on a real server).
        assert "replicas" not in deployments[worker]["spec"]
    assert {q for _, _, q in WORKERS.values()} == set(SEED_QUEUES)

    # A workerAutoscalers list of one's own adds to the workers' scalers, never replaces them.
    for name in ("operators", "workers"):
        scalers = {s["metadata"]["name"] for s in by_kind(rendered(name), "WorkerAutoscaler")}
        assert {f"{RELEASE}-{w}" for w in ("email-worker", "sms-worker")} <= scalers, name
        assert f"{RELEASE}-inventory-order-created-lag" in scalers, name

    # A worker with autoscaling off runs replicaCount and has no scaler.
    workers = {component(d): d for d in by_kind(rendered("workers"), "Deployment")}
    assert workers["push-worker"]["spec"]["replicas"] == 3
    assert f"{RELEASE}-push-worker" not in {
        s["spec"]["targetRef"]["name"] for s in by_kind(rendered("workers"), "WorkerAutoscaler")
    }
    email = named(rendered("workers"), "WorkerAutoscaler", f"{RELEASE}-email-worker")["spec"]
    assert (email["maxReplicas"], email["cooldownSeconds"]) == (4, 600)
    assert email["trigger"]["queueDepth"]["messagesPerReplica"] == 1000

    # Without an operator to scale them: fixed replicas, no scalers.
    minimal = rendered("minimal")
    assert not by_kind(minimal, "WorkerAutoscaler")
    assert all(
        d["spec"]["replicas"] == 1
        for d in by_kind(minimal, "Deployment")
        if component(d) in WORKERS
    )


@pytest.mark.k8s
def test_worker_providers_and_credentials_come_from_values(rendered: Any) -> None:
    docs = rendered("workers")
    deployments = {component(d): d for d in by_kind(docs, "Deployment")}

    def env(worker: str) -> dict[str, Any]:
        return env_of(pod_spec(deployments[worker])["containers"][0])

    email = env("email-worker")
    assert {
        k: email[k]["value"] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_USERNAME")
    } == {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "465",
        "SMTP_TLS": "tls",
        "SMTP_USERNAME": "orders@shop.example.com",
    }
    assert email["MAIL_FROM"]["value"] == "Shop <orders@shop.example.com>"
    # The password given in values is kept in a Secret of the chart, never in the pod spec.
    ref = email["SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"{RELEASE}-email-worker", "key": "smtp-password"}
    secret = named(docs, "Secret", f"{RELEASE}-email-worker")
    assert base64.b64decode(secret["data"]["smtp-password"]) == b"an-smtp-password-for-tests"
    annotations = deployments["email-worker"]["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/credentials" in annotations, "a new password restarts the worker"

    sms = env("sms-worker")
    assert sms["SMS_PROVIDER_URL"]["value"] == "https://sms.example.com/v1/messages"
    assert sms["SMS_PROVIDER_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "sms-provider",
        "key": "token",
    }
    # The queues' retry rules, SMS's own attempts: each worker follows its queue.
    assert (sms["RETRY_DELAYS_SECONDS"]["value"], sms["MAX_ATTEMPTS"]["value"]) == ("10,120", "3")
    assert (email["RETRY_DELAYS_SECONDS"]["value"], email["MAX_ATTEMPTS"]["value"]) == (
        "10,120",
        "5",
    )
    service = env_of(pod_spec(deployments["notifications"])["containers"][0])
    assert service["RETRY_DELAYS_SECONDS"]["value"] == "10,120"
    assert (sms["WORKER_PREFETCH"]["value"], sms["PROVIDER_TIMEOUT_SECONDS"]["value"]) == (
        "50",
        "5",
    )
    assert env("push-worker")["PUSH_PROVIDER_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "push-provider",
        "key": "provider-token",
    }
    roles = [
        f"postgresql-{r}" for r in ("auth", "orders", "inventory", "notifications", "analytics")
    ]
    assert {d["metadata"]["name"] for d in by_kind(docs, "Secret")} == {
        f"{RELEASE}-{name}" for name in ("jwt", "postgresql", "redis", "email-worker", *roles)
    }

    # Nothing configured: no provider variables but the SMTP defaults, no Secret.
    default = {component(d): d for d in by_kind(rendered("default"), "Deployment")}
    bare = env_of(pod_spec(default["email-worker"])["containers"][0])
    assert (bare["SMTP_PORT"]["value"], bare["SMTP_TLS"]["value"]) == ("587", "starttls")
    assert not {"SMTP_HOST", "SMTP_PASSWORD", "SMTP_USERNAME", "MAIL_FROM"} & set(bare)
    assert "SMS_PROVIDER_TOKEN" not in env_of(pod_spec(default["sms-worker"])["containers"][0])
    assert not [
        s for s in by_kind(rendered("default"), "Secret") if "worker" in s["metadata"]["name"]
    ]


@pytest.mark.k8s
def test_routes_send_socket_io_and_the_api_to_the_gateway(rendered: Any) -> None:
    (ingress,) = by_kind(rendered("external"), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "contour"
    rules = {r["host"]: r["http"]["paths"] for r in ingress["spec"]["rules"]}
    api = {p["path"]: p["backend"]["service"]["name"] for p in rules["api.shop.example.com"]}
    assert api == {"/socket.io": f"{RELEASE}-gateway", "/": f"{RELEASE}-gateway"}
    app = rules["shop.example.com"][0]["backend"]["service"]["name"]
    assert app == f"{RELEASE}-user-app"

    routes = {
        r["metadata"]["name"]: r for r in by_kind(rendered("monitoring-gateway-api"), "HTTPRoute")
    }
    api_route = routes[f"{RELEASE}-api"]
    socket_rule, rest_rule = api_route["spec"]["rules"]
    assert socket_rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/socket.io"}
    assert socket_rule["timeouts"] == {"request": "0s"}
    assert rest_rule["timeouts"] == {"request": "60s"}
    assert set(routes) == {f"{RELEASE}-api", f"{RELEASE}-user-app", f"{RELEASE}-admin-dashboard"}

    deployments = {component(d): d for d in by_kind(rendered("external"), "Deployment")}
    gateway = env_of(pod_spec(deployments["gateway"])["containers"][0])
    assert (
        gateway["CORS_ORIGINS"]["value"]
        == "https://shop.example.com,https://admin.shop.example.com"
    )
    web_config = named(rendered("external"), "ConfigMap", f"{RELEASE}-web-config")
    assert json.loads(web_config["data"]["config.json"])["apiUrl"] == "https://api.shop.example.com"


AFFINITY_ANNOTATIONS = {
    "nginx": (
        "Ingress",
        {
            "nginx.ingress.kubernetes.io/affinity": "cookie",
            "nginx.ingress.kubernetes.io/affinity-mode": "persistent",
            "nginx.ingress.kubernetes.io/session-cookie-name": "realtimeorder-affinity",
            "nginx.ingress.kubernetes.io/session-cookie-max-age": "86400",
        },
    ),
    "haproxy": ("Ingress", {"haproxy.org/cookie-persistence": "realtimeorder-affinity"}),
    "traefik": (
        "Service",
        {
            "traefik.ingress.kubernetes.io/service.sticky.cookie": "true",
            "traefik.ingress.kubernetes.io/service.sticky.cookie.name": "realtimeorder-affinity",
            "traefik.ingress.kubernetes.io/service.sticky.cookie.maxage": "86400",
        },
    ),
    "contour": ("Ingress", {}),
}


@pytest.mark.k8s
@pytest.mark.parametrize("controller", AFFINITY_ANNOTATIONS)
def test_socket_io_sessions_stick_to_one_of_two_gateway_replicas(
    kube: KubeCluster, dynamic: DynamicClient, helm: Path, controller: str
) -> None:
    """Socket.IO starts with HTTP long-polling, whose requests must all reach the replica that
    holds the session: cookie affinity at the ingress controller, ClientIP affinity at the
    Service, with the default two gateway replicas; and the API server accepts all of it."""
    namespace = f"chart-affinity-{controller}"
    docs = helm_template(
        helm,
        (),
        namespace,
        "--set",
        f"ingress.enabled=true,ingress.className={controller}",
        "--set-string",
        "ingress.annotations.example\\.com/timeout=3600",
    )
    gateway = named(docs, "Deployment", f"{RELEASE}-gateway")
    assert gateway["spec"]["replicas"] == 2
    service = named(docs, "Service", f"{RELEASE}-gateway")
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    (ingress,) = by_kind(docs, "Ingress")
    where, expected = AFFINITY_ANNOTATIONS[controller]
    annotated = ingress if where == "Ingress" else service
    annotations = annotated["metadata"].get("annotations") or {}
    assert {k: v for k, v in annotations.items() if k in expected} == expected
    others = {**(ingress["metadata"].get("annotations") or {})}
    assert others.pop("example.com/timeout") == "3600", "ingress.annotations are kept"
    if where == "Service":
        assert not others, "nothing controller-specific on the Ingress"
    elif not expected:
        assert not others, "an unknown controller gets no annotations"
    # The other Services keep no affinity.
    assert named(docs, "Service", f"{RELEASE}-auth")["spec"]["sessionAffinity"] == "None"
    problems = dry_run_apply(kube, dynamic, docs, namespace)
    assert not problems, "\n".join(problems)

    # Affinity off: no annotations; Gateway API sessionPersistence when asked for.
    off = helm_template(
        helm,
        (),
        namespace,
        "--set",
        f"ingress.enabled=true,ingress.className={controller},ingress.sessionAffinity.enabled=false",
    )
    assert not by_kind(off, "Ingress")[0]["metadata"].get("annotations")
    assert not named(off, "Service", f"{RELEASE}-gateway")["metadata"].get("annotations")
    routed = helm_template(
        helm,
        (),
        namespace,
        "--set",
        "httpRoute.enabled=true,httpRoute.parentRefs[0].name=public",
        "--set-json",
        'httpRoute.sessionPersistence={"type": "Cookie", "sessionName": "rto"}',
    )
    socket_rule = named(routed, "HTTPRoute", f"{RELEASE}-api")["spec"]["rules"][0]
    assert socket_rule["sessionPersistence"] == {"type": "Cookie", "sessionName": "rto"}


@pytest.mark.k8s
def test_alert_rules_pass_promtool(rendered: Any, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool (Debian package prometheus) is needed to check the alert rules")
    rule = named(rendered("monitoring-gateway-api"), "PrometheusRule", RELEASE)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "RealTimeOrderTargetDown",
        "RealTimeOrderHighErrorRate",
        "RealTimeOrderNoOrders",
        "RealTimeOrderNotificationsDeadLettered",
    } <= alerts


OBSERVABILITY = ROOT / "observability"


def promtool_run(*args: str | Path, cwd: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool (Debian package prometheus) is needed to check the alert rules")
    result = subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.k8s
def test_the_observability_rules_ship_as_prometheus_rules(
    rendered: Any, helm: Path, tmp_path: Path
) -> None:
    """observability/prometheus's two rule files become one PrometheusRule each, group for
    group (ScrapeTargetDown, unscoped, left out by default); promtool accepts what the chart
    renders, and the alerts' own promtool unit tests pass against it."""
    docs = rendered("monitoring-gateway-api")
    for name in ("recording-rules", "alerting-rules"):
        rule = named(docs, "PrometheusRule", f"{RELEASE}-{name}")
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        source = yaml.safe_load((OBSERVABILITY / "prometheus" / f"{name}.yaml").read_text())
        expected = [
            {**group, "rules": [r for r in group["rules"] if r.get("alert") != "ScrapeTargetDown"]}
            for group in source["groups"]
        ]
        assert rule["spec"]["groups"] == expected, name
    assert "RealTimeOrderTargetDown" in {
        r.get("alert")
        for g in named(docs, "PrometheusRule", RELEASE)["spec"]["groups"]
        for r in g["rules"]
    }, "the release's own, namespace-scoped, target alert replaces ScrapeTargetDown"

    # Everything, as the local stack loads it: the unit tests of observability/prometheus/tests
    # run against the rendered rules.
    full = helm_template(
        helm,
        (),
        "default",
        "--set",
        "monitoring.enabled=true",
        "--set-json",
        "monitoring.observabilityRules.excludeAlerts=[]",
    )
    rules_dir = tmp_path / "prometheus"
    (rules_dir / "tests").mkdir(parents=True)
    for name in ("recording-rules", "alerting-rules"):
        groups = named(full, "PrometheusRule", f"{RELEASE}-{name}")["spec"]["groups"]
        (rules_dir / f"{name}.yaml").write_text(yaml.safe_dump({"groups": groups}))
    for test in sorted((OBSERVABILITY / "prometheus" / "tests").glob("*.yaml")):
        (rules_dir / "tests" / test.name).write_text(test.read_text())
    promtool_run("check", "rules", "recording-rules.yaml", "alerting-rules.yaml", cwd=rules_dir)
    tests = sorted(f"tests/{p.name}" for p in (rules_dir / "tests").glob("*.yaml"))
    assert tests, "no promtool unit tests in observability/prometheus/tests"
    promtool_run("test", "rules", *tests, cwd=rules_dir)

    # Off with monitoring, or on their own switch; the release's own PrometheusRule stays.
    assert not by_kind(rendered("default"), "PrometheusRule")
    off = helm_template(
        helm,
        (),
        "default",
        "--set",
        "monitoring.enabled=true,monitoring.observabilityRules.enabled=false",
    )
    assert [r["metadata"]["name"] for r in by_kind(off, "PrometheusRule")] == [RELEASE]


@pytest.mark.k8s
def test_the_dashboards_ship_as_config_maps_for_the_grafana_sidecar(
    rendered: Any, helm: Path
) -> None:
    """One ConfigMap per dashboard of observability/grafana, labelled for the Grafana sidecar,
    with the dashboard's JSON unchanged; the label, its value and the namespace are values."""
    sources = {p.name: p for p in (OBSERVABILITY / "grafana").glob("*.json")}
    assert sources

    def dashboards(docs: list[Manifest]) -> dict[str, Manifest]:
        return {
            d["metadata"]["name"]: d
            for d in by_kind(docs, "ConfigMap")
            if "-dashboard-" in d["metadata"]["name"]
        }

    shipped = dashboards(rendered("monitoring-gateway-api"))
    assert set(shipped) == {f"{RELEASE}-dashboard-{n.removesuffix('.json')}" for n in sources}
    for config_map in shipped.values():
        ((key, text),) = config_map["data"].items()
        assert json.loads(text) == json.loads(sources[key].read_text(encoding="utf-8")), key
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "RealTimeOrder"
        assert config_map["metadata"]["namespace"] == namespace_for("monitoring-gateway-api")
    assert not dashboards(rendered("default")), "off by default"

    # A sidecar of its own label, searching the monitoring namespace; no CRDs needed.
    own = helm_template(
        helm,
        (),
        "default",
        "--set",
        "monitoring.dashboards.enabled=true,monitoring.dashboards.label=dashboards,"
        "monitoring.dashboards.labelValue=realtimeorder,monitoring.dashboards.namespace=grafana",
    )
    assert not by_kind(own, "PrometheusRule")
    for config_map in dashboards(own).values():
        assert config_map["metadata"]["labels"]["dashboards"] == "realtimeorder"
        assert "grafana_dashboard" not in config_map["metadata"]["labels"]
        assert config_map["metadata"]["namespace"] == "grafana"


@pytest.mark.k8s
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "gateway.replicacount=2"], "replicacount"),
        (["--set", "kafka.enabled=false"], "externalKafka.brokers"),
        (["--set", "redis.enabled=false"], "externalRedis.url"),
        (["--set", "jwt.secret=a-shared-secret-of-old"], "'secret' not allowed"),
        (
            [
                "--set",
                "kafka.enabled=false,externalKafka.brokers=k:9092,operator.kafkaMode=strimzi",
            ],
            "kafkaMode=strimzi",
        ),
        (["--set", "httpRoute.enabled=true"], "parentRefs"),
        (
            ["--set", "operator.kafkaMode=strimzi,operator.watchAllNamespaces=true"],
            "kafkaMode=admin",
        ),
        (
            ["--set", "operator.kafkaMode=strimzi,operator.watchNamespaces={default,shop}"],
            "watchNamespaces other than default",
        ),
        (["--set", "appEnv=staging"], "appEnv"),
        (
            [
                "--set",
                "orders.autoscaling.enabled=true,workerAutoscalers[0].name=o,"
                "workerAutoscalers[0].target=orders,workerAutoscalers[0].maxReplicas=3,"
                "workerAutoscalers[0].trigger.queueDepth.queue=q,"
                "workerAutoscalers[0].trigger.queueDepth.messagesPerReplica=10",
            ],
            "one Deployment takes one scaler",
        ),
        (
            [
                "--set",
                "workerAutoscalers[0].name=e,workerAutoscalers[0].target=email-worker,"
                "workerAutoscalers[0].maxReplicas=3,"
                "workerAutoscalers[0].trigger.queueDepth.queue=email.notifications,"
                "workerAutoscalers[0].trigger.queueDepth.messagesPerReplica=10",
            ],
            "workers.email.autoscaling and workerAutoscalers e; one Deployment takes one scaler",
        ),
        (
            [
                "--set",
                "workerAutoscalers[0].name=sms-worker,workerAutoscalers[0].target=inventory,"
                "workerAutoscalers[0].maxReplicas=3,"
                "workerAutoscalers[0].trigger.queueDepth.queue=q,"
                "workerAutoscalers[0].trigger.queueDepth.messagesPerReplica=10",
            ],
            "two WorkerAutoscalers are named realtimeorder-sms-worker",
        ),
        (
            ["--set-json", 'notificationQueues.queues=[{"name": "email.notifications"}]'],
            "notificationQueues.queues must list sms.notifications",
        ),
        (
            ["--set", "notificationQueues.deadLetterQueue=elsewhere.dlq"],
            "must dead-letter to notifications.dlq",
        ),
        (
            [
                "--set-json",
                'notificationQueues.queues=[{"name": "email.notifications"}, '
                '{"name": "sms.notifications", "retryDelaysSeconds": [60]}, '
                '{"name": "push.notifications"}]',
            ],
            "sms.notifications: retryDelaysSeconds must be notificationQueues.retryDelaysSeconds",
        ),
        (["--set", "workers.email.smtp.tls=ssl"], "starttls"),
        (["--set", "workers.sms.smtp.host=x"], "/workers/sms/smtp"),
        (["--set", "workers.push.autoscaling.targetCPUUtilizationPercentage=70"], "not allowed"),
    ],
)
def test_values_that_cannot_work_are_refused(helm: Path, args: list[str], message: str) -> None:
    with pytest.raises(RenderError, match=message):
        helm_template(helm, (), "default", *args)


# ---- a real API server -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def dynamic(kube: KubeCluster) -> DynamicClient:
    return DynamicClient(kube.api)  # type: ignore[no-untyped-call]


def ensure_namespace(api: client.ApiClient, name: str) -> None:
    """A namespace whose Pod Security admission warns about anything short of "restricted"."""
    body: Any = {
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        }
    }
    try:
        client.CoreV1Api(api).create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise


def dry_run_apply(
    kube: KubeCluster, dynamic: DynamicClient, docs: list[Manifest], namespace: str
) -> list[str]:
    """Server-side apply every manifest with dryRun=All and strict field validation.

    Returns one line per refusal and per warning (Pod Security, deprecated APIs...).
    """
    problems: list[str] = []
    namespaces = {namespace} | {
        d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]
    }
    for name in sorted(namespaces):
        ensure_namespace(kube.api, name)
    for doc in docs:
        what = f"{doc['kind']} {doc['metadata']['name']}"
        try:
            resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        except ResourceNotFoundError:
            problems.append(f"{what}: {doc['apiVersion']} {doc['kind']} is not served")
            continue
        target = doc["metadata"].get("namespace", namespace) if resource.namespaced else None
        request = kube.api.param_serialize(
            "PATCH",
            resource.path(name=doc["metadata"]["name"], namespace=target),
            query_params=[
                ("dryRun", "All"),
                ("fieldManager", FIELD_MANAGER),
                ("force", "true"),
                ("fieldValidation", "Strict"),
            ],
            header_params={
                "Accept": "application/json",
                "Content-Type": "application/apply-patch+yaml",
            },
            body=doc,
            auth_settings=["BearerToken"],
        )
        response = kube.api.call_api(*request[:4])
        body = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            try:
                message = json.loads(body).get("message", body)
            except ValueError:
                message = body
            problems.append(f"{what}: {response.status} {message}")
        problems += [f"{what}: warning: {w}" for w in response.headers.getlist("Warning")]
    return problems


@pytest.mark.k8s
@pytest.mark.parametrize("name", VALUE_SETS)
def test_server_side_dry_run(
    kube: KubeCluster, dynamic: DynamicClient, rendered: Any, name: str
) -> None:
    docs = rendered(name)
    problems = dry_run_apply(kube, dynamic, docs, namespace_for(name))
    assert not problems, "\n".join(problems)


@pytest.mark.k8s
def test_k8s_folder_is_accepted(kube: KubeCluster, dynamic: DynamicClient) -> None:
    folder = ROOT / "k8s"
    docs = [
        doc
        for path in sorted(folder.rglob("*.yaml"))
        if path.name not in {"dev-values.yaml", "dev-operators-values.yaml"}
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    kinds = {doc["kind"] for doc in docs}
    assert {
        "Namespace",
        "EventTopic",
        "NotificationQueue",
        "WorkerAutoscaler",
        "StatefulSet",
        "Deployment",
    } <= kinds
    # The dev loop's workers deliver to the dev-only Mailpit and provider sink of k8s/.
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    dev = yaml.safe_load((folder / "dev-values.yaml").read_text(encoding="utf-8"))["workers"]
    assert dev["email"]["smtp"]["host"] in services
    assert {p["port"] for p in services["dev-mailpit"]["spec"]["ports"]} >= {
        dev["email"]["smtp"]["port"]
    }
    for channel in ("sms", "push"):
        url = dev[channel]["provider"]["url"]
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, url
    problems = dry_run_apply(kube, dynamic, docs, "chart-k8s-folder")
    assert not problems, "\n".join(problems)


@pytest.mark.k8s
def test_install_and_upgrade_keep_generated_secrets_and_scaled_replicas(
    kube: KubeCluster, helm: Path
) -> None:
    namespace = "chart-install"
    ensure_namespace(kube.api, namespace)
    base = [
        str(helm),
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(CHART / "ci" / "bundled-values.yaml"),
        # No operator runs here to reconcile them; the other tests own the custom resources.
        "--set",
        "eventTopics.enabled=false,notificationQueues.enabled=false",
    ]
    core = client.CoreV1Api(kube.api)
    apps = client.AppsV1Api(kube.api)
    generated = (f"{RELEASE}-jwt", f"{RELEASE}-postgresql", f"{RELEASE}-redis")

    def secret_data() -> dict[str, dict[str, Any]]:
        return {
            name: dict(core.read_namespaced_secret(name, namespace).data or {})
            for name in generated
        }

    try:
        result = subprocess.run(base, capture_output=True, text=True, env=kube.env(), check=False)
        assert result.returncode == 0, result.stderr
        # NOTES.txt: how to reach the gateway without an Ingress, and how to create an admin.
        assert f"port-forward svc/{RELEASE}-gateway 3000:3000" in result.stdout
        assert "realtimeorder create-admin" in result.stdout
        # No provider is configured in this profile: the notes say the workers cannot deliver.
        assert "workers.email.smtp.host, workers.sms.provider.url" in result.stdout
        first = secret_data()
        assert_a_token_key_pair(first[f"{RELEASE}-jwt"])
        # What the operator does to a worker its WorkerAutoscaler scales: patch the scale.
        worker = f"{RELEASE}-email-worker"
        apps.patch_namespaced_deployment_scale(worker, namespace, {"spec": {"replicas": 4}})
        result = subprocess.run(
            [*base, "--set", "logLevel=DEBUG"],
            capture_output=True,
            text=True,
            env=kube.env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert secret_data() == first
        # The upgrade left the scaler's replicas alone (Helm renders none for the worker) and
        # kept the fixed ones of the services.
        scale = apps.read_namespaced_deployment_scale(worker, namespace)
        assert scale.spec is not None
        assert scale.spec.replicas == 4
        orders = apps.read_namespaced_deployment(f"{RELEASE}-orders", namespace)
        assert orders.spec is not None
        assert orders.spec.replicas == 2
        config_map = core.read_namespaced_config_map(f"{RELEASE}-env", namespace)
        assert config_map.data is not None
        assert config_map.data["LOG_LEVEL"] == "DEBUG"
    finally:
        # No kubelet runs the pre-delete hook's Job here, and this release has no custom
        # resources for it to delete (test_uninstall*.py play the hook where there are).
        subprocess.run(
            [str(helm), "uninstall", RELEASE, "--namespace", namespace, "--no-hooks"],
            capture_output=True,
            env=kube.env(),
            check=False,
        )


def test_the_bundled_redis_never_evicts_a_counter_or_a_revocation_marker(rendered: Any) -> None:
    redis = next(w for w in by_kind(rendered("default"), "StatefulSet") if component(w) == "redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_operator_runs_its_own_image(rendered: Any) -> None:
    """The services' image has no kopf and no Kubernetes client (operator/Dockerfile has)."""
    docs = rendered("default")
    operator = next(w for w in workloads(docs) if component(w) == "operator")
    image = operator["spec"]["template"]["spec"]["containers"][0]["image"]
    services = next(w for w in workloads(docs) if component(w) == "orders")
    services_image = services["spec"]["template"]["spec"]["containers"][0]["image"]
    repository, tag = services_image.rsplit(":", 1)
    assert image == f"{repository}-operator:{tag}"


@pytest.mark.k8s
def test_postgresql_restarts_only_when_its_roles_change_not_on_every_render(helm: Path) -> None:
    """The PostgreSQL pod's roles checksum leaves the generated passwords out: an install renders
    other random passwords into it than into the Secrets, so hashing them restarted PostgreSQL
    (and, without persistence, emptied it) at the first `helm upgrade`."""
    bundled = [CHART / "ci" / "bundled-values.yaml"]
    name = f"{RELEASE}-postgresql"

    def checksum(*extra: str) -> str:
        statefulset = named(helm_template(helm, bundled, "default", *extra), "StatefulSet", name)
        annotations: dict[str, str] = statefulset["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/roles"]

    assert checksum() == checksum("--set", "logLevel=DEBUG")
    assert checksum() != checksum("--set", "analytics.uses={redis}"), "one role fewer"
