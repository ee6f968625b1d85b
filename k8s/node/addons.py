"""What the chart needs on the node besides the node itself: an ingress controller and the
backing servers it does not bundle, all from images built here.

- ``ingress()``: Traefik (k8s/node/traefik.yaml, image from scripts/images/ingress.py) serving
  every Ingress of class ``traefik``, exposed on the host's 127.0.0.1 through a relay.
- ``backing(namespace)``: Kafka and RabbitMQ from the dev manifests in k8s/dev-backing/ (the
  services reach them as ``dev-kafka:9092`` and ``dev-rabbitmq``, as ci/bundled-values.yaml
  says), with their images replaced by ours from scripts/images/backing.py. The chart bundles
  those two only through the Strimzi and RabbitMQ operators, whose images cannot be built here;
  PostgreSQL and Redis are the chart's own StatefulSets with our images set in values.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from k8s.node.cluster import ROOT, NodeError, bin_dir, expose, images_module, node_dir

TRAEFIK_MANIFEST = Path(__file__).with_name("traefik.yaml")
DEV_BACKING = ROOT / "k8s" / "dev-backing"
INGRESS_PORT_ENV = "NODE_INGRESS_PORT"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 300) -> str:
    env = {**os.environ, "KUBECONFIG": str(node_dir() / "kubeconfig")}
    env["PATH"] = f"{bin_dir()}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise NodeError(f"kubectl {' '.join(args)}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def backing_images() -> dict[str, str]:
    """The backing images by server name (scripts/images/backing.py's catalogue)."""
    import importlib.util
    import sys

    images_module()  # backing.py loads build.py under the same name
    path = ROOT / "scripts" / "images" / "backing.py"
    spec = importlib.util.spec_from_file_location("rto_images_backing", path)
    if spec is None or spec.loader is None:
        raise NodeError(f"cannot load {path}")
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return {key: b.ref for key, b in module.catalogue().items()}


def ingress_image() -> str:
    text = TRAEFIK_MANIFEST.read_text()
    return next(
        line.split("image:", 1)[1].strip() for line in text.splitlines() if "image:" in line
    )


def ingress(port: int | None = None) -> int:
    """Apply Traefik, wait for it, and relay the host's 127.0.0.1:<port> to its Service."""
    kubectl("apply", "-f", str(TRAEFIK_MANIFEST))
    kubectl("-n", "traefik", "rollout", "status", "deployment/traefik", "--timeout=180s")
    cluster_ip = kubectl(
        "-n", "traefik", "get", "service", "traefik", "-o", "jsonpath={.spec.clusterIP}"
    ).strip()
    wanted = port or int(os.environ.get(INGRESS_PORT_ENV) or 0) or None
    return expose("ingress", f"{cluster_ip}:80", wanted)


def backing_manifests(names: Sequence[str] = ("kafka", "rabbitmq")) -> list[dict[str, Any]]:
    """k8s/dev-backing/<name>.yaml with our image in each container, never pulled."""
    refs = backing_images()
    objects = []
    for name in names:
        for obj in yaml.safe_load_all((DEV_BACKING / f"{name}.yaml").read_text()):
            if not obj:
                continue
            if obj["kind"] == "StatefulSet":
                for container in obj["spec"]["template"]["spec"]["containers"]:
                    container["image"] = refs[name]
                    container["imagePullPolicy"] = "Never"
                    # An Erlang CLI probe takes well over 10 s on a busy 2-core node.
                    probe = container.get("readinessProbe", {})
                    if "exec" in probe:
                        probe["timeoutSeconds"] = max(probe.get("timeoutSeconds", 1), 30)
                        probe["periodSeconds"] = max(probe.get("periodSeconds", 10), 30)
            objects.append(obj)
    return objects


def backing(namespace: str, timeout: str = "300s") -> None:
    """Run Kafka and RabbitMQ in ``namespace`` and wait until both are Ready."""
    manifests = backing_manifests()
    kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1",
            "kind": "List", "items": manifests}))  # fmt: skip
    for obj in manifests:
        if obj["kind"] == "StatefulSet":
            name = obj["metadata"]["name"]
            kubectl("-n", namespace, "rollout", "status", f"statefulset/{name}",
                    f"--timeout={timeout}", timeout=600)  # fmt: skip
