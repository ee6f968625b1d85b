"""The chart end to end on a real node (``make test-cluster``): ``helm install`` with every image
built here (services, operator, PostgreSQL, Redis, RabbitMQ, Kafka, Traefik); every pod Ready in
a namespace that enforces Pod Security ``restricted``; the operator reconciles the EventTopics
and NotificationQueues against the real brokers; a customer registers, orders and receives the
CONFIRMED push over Socket.IO through the cluster's ingress.

The release: ci/bundled-values.yaml (PostgreSQL and Redis in the release; Kafka and RabbitMQ from
k8s/dev-backing/, which k8s/node/addons.py runs with our images) plus tests/k8s/node/values.yaml
(our images, an Ingress of class traefik, one replica each).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from k8s.node import addons, cluster
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "realtimeorder"
VALUES = (CHART / "ci" / "bundled-values.yaml", Path(__file__).with_name("values.yaml"))
NAMESPACE = "rto"
RELEASE = "rto"
API_HOST = "api.realtimeorder.local"
APP_IMAGES = ("localhost/realtimeorder:dev", "localhost/realtimeorder-operator:dev")
IMAGE_SCRIPTS = ROOT / "scripts" / "images"

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        os.environ.get("RTO_CLUSTER_TESTS") != "1",
        reason="the node's tests run with make test-cluster (RTO_CLUSTER_TESTS=1)",
    ),
]


@dataclass
class Release:
    env: dict[str, str]
    ingress: str  # http://127.0.0.1:<port>, Traefik's Service through the node's relay

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            ["kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=600,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def helm(self, *args: str) -> str:
        result = subprocess.run(
            ["helm", *args], capture_output=True, text=True, env=self.env, check=False, timeout=1200
        )
        assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}\n{result.stdout}"
        return result.stdout

    def objects(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(
            self.kubectl("-n", NAMESPACE, "get", kind, "-o", "json")
        )["items"]
        return items


def build_images() -> None:
    """Every image the release needs, one at a time (cached: quick when nothing changed)."""
    for command in (
        [str(IMAGE_SCRIPTS / "build.py"), "build", "--only", "services,operator"],
        [str(IMAGE_SCRIPTS / "backing.py"), "build"],
        [str(IMAGE_SCRIPTS / "ingress.py"), "build"],
    ):
        result = subprocess.run(
            [sys.executable, *command], capture_output=True, text=True, check=False, timeout=3000
        )
        assert result.returncode == 0, result.stderr[-4000:]


def helm_values() -> list[str]:
    return [arg for path in VALUES for arg in ("-f", str(path))]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    if os.geteuid() != 0:
        pytest.fail("the node tests need root (network namespace, cgroups, containerd)")
    build_images()
    os.environ["NODE_DIR"] = str(tmp_path_factory.mktemp("node"))
    try:
        with cluster.node() as kubeconfig:
            refs = [*APP_IMAGES, *addons.backing_images().values(), addons.ingress_image()]
            cluster.load_images(refs)
            env = dict(os.environ)
            env["KUBECONFIG"] = str(kubeconfig)
            env["PATH"] = f"{cluster.bin_dir()}{os.pathsep}{env['PATH']}"
            port = addons.ingress()
            release = Release(env, f"http://127.0.0.1:{port}")
            release.kubectl("create", "namespace", NAMESPACE)
            release.kubectl(
                "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
            )
            addons.backing(NAMESPACE)
            release.helm(
                "install", RELEASE, str(CHART), "-n", NAMESPACE, *helm_values(),
                "--wait", "--timeout", "15m",
            )  # fmt: skip
            yield release
    finally:
        os.environ.pop("NODE_DIR", None)


@pytest.fixture(autouse=True)
def logs_on_failure(release: Release, request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test, the last lines of every pod of the namespace, to tell why."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed == failed_before:
        return
    for pod in release.objects("pods"):
        name = pod["metadata"]["name"]
        for container in pod["spec"]["containers"]:
            text = release.kubectl(
                "-n", NAMESPACE, "logs", name, "-c", container["name"], "--tail=40", check=False
            )  # fmt: skip
            print(f"---- {name}/{container['name']} ----\n{text}", file=sys.stderr)


def test_every_pod_is_ready_under_restricted(release: Release) -> None:
    labels = json.loads(release.kubectl("get", "namespace", NAMESPACE, "-o", "json"))
    assert labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = release.objects("pods")
    names = {p["metadata"]["name"].rsplit("-", 2)[0] for p in pods}
    for component in ("gateway", "auth", "orders", "inventory", "notifications", "operator"):
        assert f"{RELEASE}-realtimeorder-{component}" in names, names
    not_ready = [
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") != "Succeeded"
        and not all(c.get("ready") for c in p["status"].get("containerStatuses", []))
    ]
    assert not not_ready, f"pods not Ready: {not_ready}"
    images = {c["image"] for p in pods for c in p["spec"]["containers"]}
    assert all(i.startswith("localhost/") for i in images), images


def wait_ready(release: Release, kind: str) -> list[dict[str, Any]]:
    release.kubectl(
        "-n", NAMESPACE, "wait", "--for=condition=Ready", kind, "--all", "--timeout=300s"
    )  # fmt: skip
    items = release.objects(kind)
    assert items, f"no {kind} in the release"
    return items


def test_operator_reconciles_topics_and_queues_on_the_real_brokers(release: Release) -> None:
    topics = wait_ready(release, "eventtopics")
    queues = wait_ready(release, "notificationqueues")
    listed = kafka_topics(release)
    for topic in topics:
        assert topic["status"]["topicName"] in listed, (topic["status"], listed)
    declared = release.kubectl(
        "-n", NAMESPACE, "exec", "dev-rabbitmq-0", "--", "rabbitmqctl", "-q", "list_queues", "name"
    ).split()
    for queue in queues:
        assert set(queue_names(queue)) <= set(declared), (queue["status"], declared)


def kafka_topics(release: Release) -> set[str]:
    """The topics with a partition on the broker's disk (<topic>-<partition> folders; a deleted
    topic's folder is renamed at once)."""
    folders = release.kubectl(
        "-n", NAMESPACE, "exec", "dev-kafka-0", "--", "ls", "/var/lib/kafka/data"
    ).split()
    return {f.rsplit("-", 1)[0] for f in folders if re.fullmatch(r".+-\d+", f)}


def queue_names(queue: dict[str, Any]) -> list[str]:
    """The work, retry and dead-letter queues the operator reports for a NotificationQueue."""
    names = queue["status"]["queues"]
    return [
        names["work"],
        *names.get("retry", []),
        *([names["deadLetter"]] if names.get("deadLetter") else []),
    ]


async def confirmed_push_through_ingress(base: str) -> dict[str, Any]:
    headers = {"Host": API_HOST}
    email = f"node-{uuid.uuid4().hex[:10]}@example.com"
    password = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=20) as http:
        registered = await http.post(
            "/auth/register", json={"email": email, "password": password, "name": "Node Test"}
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        token = login.json()["accessToken"]
        products = await http.get("/inventory/products")
        assert products.status_code == 200, products.text
        product = next(p for p in products.json()["items"] if p["stock"]["available"] > 0)

        updates: list[dict[str, Any]] = []
        confirmed = asyncio.Event()
        sio = socketio.AsyncClient(reconnection=False)

        async def on_update(data: dict[str, Any]) -> None:
            updates.append(data)
            if data.get("status") == "CONFIRMED":
                confirmed.set()

        sio.on("order.updated", on_update)

        await sio.connect(
            base,
            headers=headers,
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            placed = await http.post(
                "/orders",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "items": [{"productId": product["id"], "quantity": 1}],
                    "shippingAddress": {
                        "name": "Node Test",
                        "line1": "1 Main St",
                        "city": "Berlin",
                        "postalCode": "10115",
                        "country": "DE",
                    },
                },
            )
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["id"]
            async with asyncio.timeout(60):
                await confirmed.wait()
        finally:
            await sio.disconnect()
    push = next(u for u in updates if u.get("status") == "CONFIRMED")
    assert push["orderId"] == order_id, updates
    return push


def test_customer_orders_and_gets_the_confirmed_push_through_the_ingress(
    release: Release,
) -> None:
    ingress = json.loads(release.kubectl("-n", NAMESPACE, "get", "ingress", "-o", "json"))
    assert ingress["items"][0]["spec"]["ingressClassName"] == "traefik"
    started = time.monotonic()
    push = asyncio.run(confirmed_push_through_ingress(release.ingress))
    assert push["status"] == "CONFIRMED"
    assert time.monotonic() - started < 90


# ---- step 3: upgrade, a killed pod, uninstall --------------------------------------------------


class Poller:
    """GETs through the ingress, one after another, until stopped: every answer but a 200 is a
    failure (with the time it came)."""

    def __init__(self, base: str, path: str) -> None:
        self.base = base
        self.path = path
        self.ok = 0
        self.failures: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.base, headers={"Host": API_HOST}, timeout=10
        ) as http:
            while not self._stop.is_set():
                try:
                    answer = await http.get(self.path)
                    if answer.status_code == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"{time.strftime('%X')} HTTP {answer.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{time.strftime('%X')} {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()


def pod_names(release: Release) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in release.objects("pods")
        if p["metadata"]["name"].startswith(f"{RELEASE}-realtimeorder-")
    }


async def poll_during_upgrade(release: Release) -> Poller:
    poller = Poller(release.ingress, "/inventory/products")
    task = asyncio.create_task(poller.run())
    try:
        await asyncio.sleep(1)
        await asyncio.to_thread(
            release.helm,
            "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, *helm_values(),
            "--set", "logLevel=DEBUG", "--wait", "--timeout", "15m",
        )  # fmt: skip
        await asyncio.sleep(1)
    finally:
        poller.stop()
        await task
    return poller


def test_helm_upgrade_rolls_every_pod_with_no_failed_request(release: Release) -> None:
    before = pod_names(release)
    poller = asyncio.run(poll_during_upgrade(release))
    assert poller.ok > 20, poller.ok
    assert not poller.failures, f"{len(poller.failures)} failed requests: {poller.failures[:10]}"
    rolled = {n for n in before if not n.startswith(f"{RELEASE}-realtimeorder-postgresql")}
    rolled = {n for n in rolled if not n.startswith(f"{RELEASE}-realtimeorder-redis")}
    # `helm upgrade --wait` returns once the new pods are Ready; the old ones keep serving for
    # their preStop sleep and shut down after it.
    wait_until(
        lambda: not rolled & pod_names(release),
        timeout=120,
        every=2,
        message="the pods the upgrade replaced to be gone",
    )


async def orders_while_a_pod_dies(release: Release, victim: str) -> list[dict[str, Any]]:
    """Place orders one after another, kill ``victim`` after the third, and return every
    accepted order once final."""
    headers = {"Host": API_HOST}
    email = f"node-{uuid.uuid4().hex[:10]}@example.com"
    password = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=release.ingress, headers=headers, timeout=20) as http:
        assert (
            await http.post(
                "/auth/register", json={"email": email, "password": password, "name": "Node Kill"}
            )
        ).status_code == 201
        login = await http.post("/auth/login", json={"email": email, "password": password})
        auth = {"Authorization": f"Bearer {login.json()['accessToken']}"}
        products = (await http.get("/inventory/products")).json()["items"]
        product = next(p for p in products if p["stock"]["available"] > 20)
        accepted: list[str] = []
        for n in range(12):
            if n == 3:
                await asyncio.to_thread(
                    release.kubectl, "-n", NAMESPACE, "delete", "pod", victim, "--wait=false"
                )
            placed = await http.post(
                "/orders",
                headers=auth,
                json={
                    "items": [{"productId": product["id"], "quantity": 1}],
                    "shippingAddress": {
                        "name": "Node Kill",
                        "line1": "1 Main St",
                        "city": "Berlin",
                        "postalCode": "10115",
                        "country": "DE",
                    },
                },
            )
            if placed.status_code == 201:
                accepted.append(placed.json()["id"])
            await asyncio.sleep(0.5)
        assert len(accepted) >= 6, accepted
        deadline = time.monotonic() + 180
        final: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and len(final) < len(accepted):
            for order_id in [i for i in accepted if i not in final]:
                answer = await http.get(f"/orders/{order_id}", headers=auth)
                if answer.status_code == 200 and answer.json()["status"] in ("CONFIRMED", "FAILED"):
                    final[order_id] = answer.json()
            await asyncio.sleep(1)
        missing = [i for i in accepted if i not in final]
        assert not missing, f"orders never settled after the pod died: {missing}"
        return list(final.values())


def test_killing_the_inventory_pod_mid_stream_loses_no_order(release: Release) -> None:
    victim = next(
        n for n in pod_names(release) if n.startswith(f"{RELEASE}-realtimeorder-inventory")
    )
    orders = asyncio.run(orders_while_a_pod_dies(release, victim))
    assert {o["status"] for o in orders} == {"CONFIRMED"}, [(o["id"], o["status"]) for o in orders]
    # The pod's grace period (preStop and shutdown) is 40 s.
    wait_until(
        lambda: victim not in pod_names(release),
        timeout=90,
        every=2,
        message=f"the killed pod {victim} to be gone",
    )


KEEP = "helm.sh/resource-policy"


def release_leftovers(release: Release) -> list[str]:
    """The release's objects, but those the chart keeps on purpose (resource-policy keep: the
    bundled PostgreSQL's password Secret, see the chart README)."""
    kinds = (
        "all,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies,"
        "poddisruptionbudgets,ingresses,persistentvolumeclaims,eventtopics,notificationqueues,"
        "workerautoscalers"
    )
    selector = f"app.kubernetes.io/instance={RELEASE}"
    found = json.loads(release.kubectl("-n", NAMESPACE, "get", kinds, "-l", selector, "-o", "json"))
    found["items"] += json.loads(
        release.kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "json")
    )["items"]
    return [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in found["items"]
        if o["metadata"].get("annotations", {}).get(KEEP) != "keep"
    ]


def test_helm_uninstall_leaves_nothing_behind(release: Release) -> None:
    topics = [t["status"]["topicName"] for t in release.objects("eventtopics")]
    # The shared dead-letter queue (notifications.dlq) is not one NotificationQueue's own.
    queues = [
        name
        for q in release.objects("notificationqueues")
        for name in queue_names(q)
        if name != q["status"]["queues"].get("deadLetter")
    ]
    assert release_leftovers(release)
    release.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m")
    wait_until(
        lambda: not release_leftovers(release),
        timeout=120,
        every=1,
        message="nothing of the release left",
    )
    listed = kafka_topics(release)
    assert not set(topics) & listed, set(topics) & listed
    declared = release.kubectl(
        "-n", NAMESPACE, "exec", "dev-rabbitmq-0", "--", "rabbitmqctl", "-q", "list_queues", "name"
    ).split()
    assert not set(queues) & set(declared), set(queues) & set(declared)
