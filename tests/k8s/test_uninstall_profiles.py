"""`helm install` then `helm uninstall` of every chart profile, with the operator running, leaves
nothing behind.

For each values profile of charts/realtimeorder/ci/, in a fresh namespace of the session's API
server: install the release with helm; run the operator for it (as the chart's own operator
ServiceAccount, in the modes the chart gives its Deployment) until every EventTopic,
NotificationQueue and WorkerAutoscaler of the release reports Ready for its current generation;
`helm uninstall` (the test runs the pre-delete hook Job's command as the hook's ServiceAccount
and reports its pod's outcome, as `test_uninstall.py` does: no kubelet runs); delete the
namespace. Then nothing of the release may remain: the namespace is gone (the control plane runs
kube-controller-manager, whose namespace controller finalises it only once every object in it,
custom resources and their finalizers included, is gone), no object in any namespace or cluster
scope carries the release's instance label, none is owned by the release's custom resources,
and in Kafka and RabbitMQ the release's topics and queues are gone or kept as their
deletionPolicy says. A profile without the operator (minimal) renders no custom resource: the
test checks that, and the uninstall as for every other.

Profiles run in groups, all profiles of a group at the same time, each with its own namespace,
release, operator process and hook: most of a profile's time is waiting (for the API server, the
operator's reconciliation, the hook Job and the namespace controller), so one group's run takes
about as long as its slowest profile instead of the sum of all of them.

What the test plays or changes, and why:
- The session's Kafka and RabbitMQ stand in for the profile's brokers (the operator is given
  their address and credentials instead of the profile's); the profile's topics are renamed with
  a prefix of the run and its queues live in a virtual host of the run, since other suites use
  the platform's topic and queue names on the same brokers. Both are removed at the end.
- An operator that watches every namespace (monitoring-gateway-api) watches the release's only:
  its ClusterRole still grants it every namespace, but on this shared API server it would
  reconcile the other tests' resources.
- Strimzi's topic operator and the RabbitMQ messaging topology operator are played by
  `tests/k8s/stand_ins.py`, Strimzi's finalizer included.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx
import pytest
import yaml
from confluent_kafka.admin import AdminClient
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from devstack.testing import KafkaServer, RabbitMQServer
from realtimeorder_operator import builders
from tests.k8s.conftest import KubeCluster
from tests.k8s.operator import support
from tests.k8s.stand_ins import StrimziTopicOperator, TopologyOperator
from tests.k8s.test_chart import CHART, PROFILES, ensure_namespace, profile_id
from tests.k8s.test_uninstall import custom_objects, hook_pod, play_kubelet
from tests.support import wait_until

pytestmark = pytest.mark.k8s
GROUP, VERSION = "realtimeorder.io", "v1alpha1"
INSTANCE = "app.kubernetes.io/instance"
OWNER_LABEL = f"{GROUP}/owner"
FINALIZER = f"{GROUP}/finalizer"
# What the operator takes from the chart's Deployment: its modes. The connection variables are
# the session's brokers instead (see the module docstring).
MODE_VARIABLES = ("STRIMZI_KAFKA_CLUSTER", "RABBITMQ_TOPOLOGY_CLUSTER")
# Two groups of four: the profiles of one group run at once (see the module docstring); eight
# at once would start eight operators and eight helm clients on the session's two cores.
GROUP_SIZE = 4
GROUPS = [PROFILES[i : i + GROUP_SIZE] for i in range(0, len(PROFILES), GROUP_SIZE)]
# Bounds, not durations, for a machine whose two cores are shared with other suites: a profile
# took under a minute from install to its namespace gone at a load of 4, and up to seven at 40,
# when starting the operator alone took two minutes and reconciling three.
START_TIMEOUT = 240.0
READY_TIMEOUT = 360.0
NAMESPACE_TIMEOUT = 240.0
HELM_TIMEOUT = 400


def chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


@dataclass
class Run:
    """One profile's release, and what the test saw of it."""

    profile: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    notes: list[str] = field(default_factory=list)
    failure: str = ""
    # each custom resource as it was once reconciled, and their uids
    reconciled: list[dict[str, Any]] = field(default_factory=list)
    uids: set[str] = field(default_factory=set)
    operator_env: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = round(time.monotonic() - began, 1)

    @property
    def name(self) -> str:
        return profile_id(self.profile)

    @property
    def release(self) -> str:
        return f"realtimeorder-{self.suffix}"

    @property
    def namespace(self) -> str:
        return f"uninstall-{self.name}-{self.suffix}"

    @property
    def vhost(self) -> str:
        return f"uninstall-{self.suffix}"

    @property
    def topic_prefix(self) -> str:
        return f"uninstall-{self.suffix}."


def isolating_values(run: Run) -> list[str]:
    """--set-json arguments that rename the profile's topics and move its queues to the run's
    vhost, leaving everything else as the profile says."""
    profile: dict[str, Any] = yaml.safe_load(run.profile.read_text(encoding="utf-8")) or {}
    defaults = chart_values()
    topics = (profile.get("eventTopics") or {}).get("topics") or defaults["eventTopics"]["topics"]
    renamed = [{**topic, "name": run.topic_prefix + topic["name"]} for topic in topics]
    args = ["--set-json", f"eventTopics.topics={json.dumps(renamed)}"]
    args += ["--set-json", f"notificationQueues.vhost={json.dumps(run.vhost)}"]
    scalers = profile.get("workerAutoscalers") or defaults["workerAutoscalers"]
    if scalers:
        moved = []
        for scaler in scalers:
            trigger = dict(scaler["trigger"])
            if "kafkaLag" in trigger:
                lag = trigger["kafkaLag"]
                trigger["kafkaLag"] = {**lag, "topic": run.topic_prefix + lag["topic"]}
            if "queueDepth" in trigger:
                trigger["queueDepth"] = {**trigger["queueDepth"], "vhost": run.vhost}
            moved.append({**scaler, "trigger": trigger})
        args += ["--set-json", f"workerAutoscalers={json.dumps(moved)}"]
    return args


class Session:
    """What every run of a group shares: the cluster, helm, the brokers, a work folder."""

    def __init__(
        self,
        kube: KubeCluster,
        helm: Path,
        kafka: KafkaServer,
        rabbitmq: RabbitMQServer,
        workdir: Path,
    ) -> None:
        self.kube = kube
        self.helm = helm
        self.kafka = kafka
        self.rabbitmq = rabbitmq
        self.workdir = workdir
        self.kubectl = support.Kubectl(kube.control_plane)

    @contextlib.contextmanager
    def api(self) -> Iterator[client.ApiClient]:
        """An admin client of this thread's own."""
        with config.new_client_from_config(config_file=str(self.kube.kubeconfig)) as api:  # type: ignore[no-untyped-call]
            yield api

    def rabbit(self) -> httpx.Client:
        auth = (self.rabbitmq.user, self.rabbitmq.password)
        return httpx.Client(base_url=self.rabbitmq.management_url, auth=auth, timeout=10)

    def helm_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.helm), *args, "--qps", "100", "--burst-limit", "200"],
            capture_output=True,
            text=True,
            env=self.kube.env(),
            timeout=HELM_TIMEOUT,
            check=False,
        )


# ---- one profile ------------------------------------------------------------------------------


def run_profile(session: Session, run: Run) -> None:
    began = time.monotonic()
    try:
        with session.api() as api:
            with run.phase("install"):
                install(session, api, run)
            if operator_deployment(api, run) is None:
                exercise_without_operator(session, api, run)
            else:
                exercise_with_operator(session, api, run)
            with run.phase("namespace"):
                delete_namespace(api, run)
    except Exception:
        run.failure = traceback.format_exc()
        # Leave the shared cluster as tidy as a failed run can: the release's cluster-wide
        # objects and its namespace go (what still holds a finalizer stays for the post-mortem).
        with contextlib.suppress(Exception):
            session.helm_run("uninstall", run.release, "--namespace", run.namespace, "--no-hooks")
        with contextlib.suppress(Exception), session.api() as api:
            client.CoreV1Api(api).delete_namespace(run.namespace)
    finally:
        run.seconds = time.monotonic() - began


def install(session: Session, api: client.ApiClient, run: Run) -> None:
    with session.rabbit() as rabbit:
        rabbit.put(f"/api/vhosts/{run.vhost}").raise_for_status()
        rabbit.put(
            f"/api/permissions/{run.vhost}/{session.rabbitmq.user}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
    ensure_namespace(api, run.namespace)
    result = session.helm_run(
        "install", run.release, str(CHART), "--namespace", run.namespace,
        "--values", str(run.profile), *isolating_values(run),
    )  # fmt: skip
    assert result.returncode == 0, f"helm install: {result.stderr}"


def operator_deployment(api: client.ApiClient, run: Run) -> Any:
    found = (
        client.AppsV1Api(api)
        .list_namespaced_deployment(
            run.namespace,
            label_selector=f"{INSTANCE}={run.release},app.kubernetes.io/component=operator",
        )
        .items
    )
    return found[0] if found else None


def exercise_without_operator(session: Session, api: client.ApiClient, run: Run) -> None:
    """No operator: no custom resource may be rendered (nothing would reconcile it)."""
    run.notes.append("no operator in this profile: no custom resources, uninstall only")
    assert custom_objects(api, run.namespace) == {}, "custom resources without an operator"
    result = session.helm_run("uninstall", run.release, "--namespace", run.namespace)
    assert result.returncode == 0, f"helm uninstall: {result.stdout}{result.stderr}"


def exercise_with_operator(session: Session, api: client.ApiClient, run: Run) -> None:
    deployment = operator_deployment(api, run)
    (container,) = deployment.spec.template.spec.containers
    chart_env = {item.name: item.value for item in container.env or [] if item.value is not None}
    run.operator_env = {
        **{name: chart_env[name] for name in MODE_VARIABLES if chart_env.get(name)},
        "WATCH_NAMESPACE": run.namespace,
        "KAFKA_BROKER": session.kafka.bootstrap,
        "RABBITMQ_MANAGEMENT_URL": session.rabbitmq.management_url,
        "RABBITMQ_USER": session.rabbitmq.user,
        "RABBITMQ_PASSWORD": session.rabbitmq.password,
    }
    watched = chart_env.get("WATCH_NAMESPACE", "")
    if watched != run.namespace:
        run.notes.append(f"the chart's operator watches {watched or 'every namespace'!r}")
    stand_ins: list[Any] = []
    if "STRIMZI_KAFKA_CLUSTER" in run.operator_env:
        stand_ins.append(StrimziTopicOperator(api, run.namespace, session.kafka.bootstrap))
    if "RABBITMQ_TOPOLOGY_CLUSTER" in run.operator_env:
        auth = (session.rabbitmq.user, session.rabbitmq.password)
        stand_ins.append(
            TopologyOperator(api, run.namespace, session.rabbitmq.management_url, auth)
        )
    workdir = session.workdir / run.name
    workdir.mkdir(parents=True, exist_ok=True)
    with run.phase("token"):
        kubeconfig = support.account_kubeconfig(
            session.kubectl,
            run.namespace,
            deployment.spec.template.spec.service_account_name,
            workdir / "operator-kubeconfig",
        )
    began = time.monotonic()
    with support.run_operator(
        kubeconfig, workdir / "operator.log", run.namespace, run.operator_env, START_TIMEOUT
    ) as operator:
        run.phases["operator start"] = round(time.monotonic() - began, 1)
        try:
            with run.phase("reconcile"):
                wait_reconciled(api, run, stand_ins)
            with run.phase("uninstall"):
                uninstall_with_hook(session, api, run, stand_ins)
            problems = broker_problems(session, run)
            assert not problems, f"not as the deletionPolicy says: {problems}"
        except Exception as exc:
            raise AssertionError(f"operator log (tail):\n{operator.log()[-3000:]}") from exc
    modes = [f"{k}={run.operator_env[k]}" for k in MODE_VARIABLES if k in run.operator_env]
    run.notes.append("operator modes: " + (", ".join(modes) or "Admin API, management API"))


def ready(obj: dict[str, Any]) -> bool:
    generation = obj["metadata"].get("generation")
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        and c.get("observedGeneration") == generation
        for c in (obj.get("status") or {}).get("conditions") or []
    )  # fmt: skip


def wait_reconciled(api: client.ApiClient, run: Run, stand_ins: list[Any]) -> None:
    """Until every custom resource of the release is Ready, playing the third-party operators."""
    pending: list[str] = []

    def all_ready() -> bool:
        for stand_in in stand_ins:
            stand_in.step()
        found = custom_objects(api, run.namespace)
        assert found, "the release has no custom resources"
        pending[:] = [
            f"{plural}/{o['metadata']['name']}: {(o.get('status') or {}).get('conditions')}"
            for plural, items in found.items()
            for o in items
            if not ready(o)
        ]
        return not pending

    try:
        wait_until(all_ready, timeout=READY_TIMEOUT, every=0.5, message="all Ready")
    except AssertionError as exc:
        raise AssertionError(f"not Ready: {pending}") from exc
    found = custom_objects(api, run.namespace)
    strimzi = "STRIMZI_KAFKA_CLUSTER" in run.operator_env
    topology = "RABBITMQ_TOPOLOGY_CLUSTER" in run.operator_env
    for plural, items in found.items():
        for obj in items:
            meta = obj["metadata"]
            assert meta["labels"][INSTANCE] == run.release
            run.uids.add(meta["uid"])
            run.reconciled.append(obj)
            # The operator's finalizer is on exactly the resources whose deletion must clean up.
            finalized = FINALIZER in (meta.get("finalizers") or [])
            if plural == "eventtopics":
                needed = builders.event_topic_needs_cleanup(obj["spec"], meta, strimzi=strimzi)
            elif plural == "notificationqueues":
                needed = builders.notification_queue_needs_cleanup(
                    obj["spec"], meta, topology=topology
                )
            else:
                needed = False
            assert finalized == needed, f"{plural}/{meta['name']}: finalizer {finalized}"
    run.notes.append("reconciled " + ", ".join(f"{len(v)} {k}" for k, v in found.items()))


def uninstall_with_hook(
    session: Session, api: client.ApiClient, run: Run, stand_ins: list[Any]
) -> None:
    core = client.CoreV1Api(api)
    began = time.monotonic()
    uninstall = subprocess.Popen(
        [str(session.helm), "uninstall", run.release, "--namespace", run.namespace,
         "--timeout", "6m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=session.kube.env(),
    )  # fmt: skip
    try:

        def hook_started() -> Any:
            for stand_in in stand_ins:
                stand_in.step()
            return hook_pod(core, run.namespace)

        pod = wait_until(hook_started, timeout=READY_TIMEOUT, message=f"{run.name}: the hook's pod")
        run.phases["hook pod"] = round(time.monotonic() - began, 1)
        with playing(stand_ins):
            hook = play_kubelet(
                session.kube, session.kubectl, run.namespace, pod, session.workdir / run.name
            )
        assert hook.returncode == 0, f"the hook failed:\n{hook.stdout}{hook.stderr}"
        assert "deleted without cleanup" not in hook.stdout, hook.stdout
        run.phases["hook done"] = round(time.monotonic() - began, 1)
        while uninstall.poll() is None:
            for stand_in in stand_ins:
                stand_in.step()
            time.sleep(0.3)
        stdout, stderr = uninstall.communicate(timeout=HELM_TIMEOUT)
        assert uninstall.returncode == 0, f"helm uninstall: {stdout}{stderr}"
    finally:
        if uninstall.poll() is None:
            uninstall.kill()
            uninstall.wait(timeout=10)
    # Until the Kafka is gone, Strimzi still lets go of KafkaTopics being deleted.
    for stand_in in stand_ins:
        stand_in.step()


@contextlib.contextmanager
def playing(stand_ins: list[Any]) -> Iterator[None]:
    """The third-party operators keep working in the background while the hook runs."""
    if not stand_ins:
        yield
        return
    stop = False

    def loop() -> None:
        while not stop:
            for stand_in in stand_ins:
                stand_in.step()
            time.sleep(0.3)

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(loop)
        try:
            yield
        finally:
            stop = True
            future.result(timeout=60)


def delete_namespace(api: client.ApiClient, run: Run) -> None:
    core = client.CoreV1Api(api)
    core.delete_namespace(run.namespace)

    def gone() -> bool:
        try:
            namespace = core.read_namespace(run.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        conditions = (namespace.status and namespace.status.conditions) or []
        raise AssertionError("; ".join(f"{c.type}: {c.message}" for c in conditions if c.message))

    wait_until(gone, timeout=NAMESPACE_TIMEOUT, message=f"namespace {run.namespace} gone")


# ---- what is left anywhere --------------------------------------------------------------------


def listable_resources(api: client.ApiClient) -> list[str]:
    """The collection path of every resource the API server serves (preferred versions)."""
    paths = ["/api/v1"] + [
        f"/apis/{group.preferred_version.group_version}"
        for group in client.ApisApi(api).get_api_versions().groups
        if group.preferred_version is not None
    ]
    found = []
    for path in paths:
        listing = cast(dict[str, Any], get_json(api, path))
        for resource in listing["resources"]:
            if "/" not in resource["name"] and "list" in resource["verbs"]:
                found.append(f"{path}/{resource['name']}")
    return found


def get_json(api: client.ApiClient, path: str, **query: str) -> Any:
    request = api.param_serialize(
        "GET", path, query_params=list(query.items()),
        header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
    )  # fmt: skip
    response = api.call_api(*request[:4])
    body = response.read()  # type: ignore[no-untyped-call]
    assert response.status == 200, f"GET {path}: {response.status} {body[:300]!r}"
    return json.loads(body)


def leftovers(api: client.ApiClient, runs: list[Run]) -> dict[str, list[str]]:
    """Per profile: every object, in any namespace or cluster-wide, that carries the release's
    instance label, is owned by one of its custom resources, or lives in its namespace."""
    by_release = {run.release: run for run in runs}
    by_namespace = {run.namespace: run for run in runs}
    by_uid = {uid: run for run in runs for uid in run.uids}
    left: dict[str, list[str]] = {}
    selector = f"{INSTANCE} in ({','.join(by_release)})"
    for path in listable_resources(api):
        for query in ({"labelSelector": selector}, {"labelSelector": OWNER_LABEL}):
            items = cast(dict[str, Any], get_json(api, path, **query)).get("items") or []
            for item in items:
                meta = item["metadata"]
                owners = [
                    by_uid.get(ref.get("uid", "")) for ref in meta.get("ownerReferences") or []
                ]
                run = (
                    by_release.get((meta.get("labels") or {}).get(INSTANCE, ""))
                    or by_namespace.get(meta.get("namespace", ""))
                    or next((o for o in owners if o is not None), None)
                )
                if run is not None:
                    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
                    left.setdefault(run.name, []).append(f"{path} {where}{meta['name']}")
    return left


def broker_state(session: Session, run: Run) -> tuple[set[str], set[str]]:
    """The run's topics in the session's Kafka and its queues in its vhost."""
    admin = AdminClient({"bootstrap.servers": session.kafka.bootstrap})
    topics = {t for t in admin.list_topics(timeout=10).topics if t.startswith(run.topic_prefix)}
    with session.rabbit() as rabbit:
        response = rabbit.get(f"/api/queues/{quote(run.vhost, safe='')}")
        queues = {q["name"] for q in response.json()} if response.status_code == 200 else set()
    return topics, queues


def broker_problems(session: Session, run: Run) -> list[str]:
    """Where the release's topics and queues are not as their deletionPolicy says after the
    uninstall: the Admin API mode and Strimzi delete a `Delete` topic and keep a `Retain` one
    (its KafkaTopic was made unmanaged first); the management API mode deletes a `Delete`
    queue's work and retry queues, never the dead-letter queue (it may be shared); `Retain`
    keeps everything, in the topology mode too."""
    topics, queues = broker_state(session, run)
    problems = []
    for obj in run.reconciled:
        spec, status = obj["spec"], obj.get("status") or {}
        delete = spec.get("deletionPolicy") == "Delete"
        if obj["kind"] == "EventTopic":
            if (spec["topicName"] in topics) == delete:
                problems.append(f"topic {spec['topicName']} ({spec.get('deletionPolicy')})")
        elif obj["kind"] == "NotificationQueue":
            made = status["queues"]
            for name in [made["work"], *made["retry"]]:
                if (name in queues) == delete:
                    problems.append(f"queue {name} ({spec.get('deletionPolicy')})")
            if made["deadLetter"] not in queues:
                problems.append(f"dead-letter queue {made['deadLetter']} deleted")
    return problems


def remove_broker_objects(session: Session, runs: list[Run]) -> None:
    admin = AdminClient({"bootstrap.servers": session.kafka.bootstrap})
    prefixes = tuple(run.topic_prefix for run in runs)
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefixes)]
    if topics:
        for future in admin.delete_topics(topics).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
    with session.rabbit() as rabbit:
        for run in runs:
            rabbit.delete(f"/api/vhosts/{run.vhost}")


@pytest.mark.timeout(1800)
@pytest.mark.parametrize(
    "profiles", GROUPS, ids=["+".join(profile_id(p) for p in group) for group in GROUPS]
)
def test_every_profile_uninstalls_without_leaving_anything_behind(
    profiles: list[Path],
    kube: KubeCluster,
    helm: Path,
    kafka_server: KafkaServer,
    rabbitmq_server: RabbitMQServer,
    tmp_path: Path,
) -> None:
    session = Session(kube, helm, kafka_server, rabbitmq_server, tmp_path)
    runs = [Run(profile) for profile in profiles]
    try:
        with ThreadPoolExecutor(max_workers=len(runs)) as pool:
            list(pool.map(lambda run: run_profile(session, run), runs))
        failures = {run.name: run.failure for run in runs if run.failure}
        left = leftovers(kube.api, runs)
        report = "\n".join(
            f"{run.name} ({run.seconds:.0f}s): {'; '.join(run.notes)}" for run in runs
        )
        print(report)
        assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())
        assert not left, f"left behind: {json.dumps(left, indent=1)}"
    finally:
        remove_broker_objects(session, runs)
