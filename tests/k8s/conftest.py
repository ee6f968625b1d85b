"""Session fixtures for the tests against a real Kubernetes API server (marker ``k8s``).

``kube`` (session scope) -> :class:`KubeCluster`
    One control plane (etcd, kube-apiserver, kube-controller-manager from
    ``tests/k8s/controlplane.py``) started once per test session, with every CRD installed and
    established before the first test runs:

    - ours: ``charts/realtimeorder/crds/*.yaml`` (falling back to ``operator/crds/`` while the
      chart's folder is empty);
    - third-party (Strimzi, RabbitMQ cluster and topology operators, Gateway API, Prometheus
      Operator): the folder named by ``RTO_THIRD_PARTY_CRDS``, or else the one
      ``scripts/third-party-crds.sh`` prints (it fetches the pinned upstream files once into a
      cache outside the repository).

    Attributes: ``api`` (a ``kubernetes.client.ApiClient`` with admin rights), ``kubeconfig``
    (Path), ``server`` (str), ``token`` (str), ``control_plane`` (the ``ControlPlane``),
    ``crds`` (names of the installed CRDs); ``env()`` gives os.environ with KUBECONFIG set and
    the tools' bin directory first on PATH, for helm/kubectl subprocesses. Tests share the
    cluster: each works in namespaces of its own and leaves other namespaces alone.

``helm`` (session scope) -> Path
    The helm binary built by ``scripts/k8s-testenv/build.sh`` (no API server needed).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.k8s.controlplane import ControlPlane, ToolsMissingError, control_plane, tool_path

ROOT = Path(__file__).resolve().parents[2]
CHART_CRDS = ROOT / "charts" / "realtimeorder" / "crds"
OPERATOR_CRDS = ROOT / "operator" / "crds"
THIRD_PARTY_SCRIPT = ROOT / "scripts" / "third-party-crds.sh"
ESTABLISHED_TIMEOUT = 60.0
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class KubeCluster:
    """The session's control plane with every CRD installed (see the module docstring)."""

    control_plane: ControlPlane
    api: client.ApiClient
    crds: tuple[str, ...]

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def server(self) -> str:
        return self.control_plane.server

    @property
    def token(self) -> str:
        return self.control_plane.token

    def env(self) -> dict[str, str]:
        return self.control_plane.env()


def our_crd_files() -> list[Path]:
    """The platform's CRDs: the chart's copies, or the operator's while the chart has none."""
    files = sorted(CHART_CRDS.glob("*.yaml")) if CHART_CRDS.is_dir() else []
    return files or sorted(OPERATOR_CRDS.glob("*.yaml"))


def third_party_crd_dir() -> Path:
    """RTO_THIRD_PARTY_CRDS, or the cache folder filled by scripts/third-party-crds.sh."""
    explicit = os.environ.get("RTO_THIRD_PARTY_CRDS")
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise RuntimeError(f"RTO_THIRD_PARTY_CRDS={explicit} is not a folder")
        return path
    result = subprocess.run(
        ["bash", str(THIRD_PARTY_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            "no third-party CRDs: set RTO_THIRD_PARTY_CRDS to a folder holding them "
            f"(e.g. ../shared/k8s-crds), or let {THIRD_PARTY_SCRIPT.name} fetch them:\n"
            + result.stderr
        )
    return Path(result.stdout.strip().splitlines()[-1])


def load_crds(paths: list[Path]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in paths:
        # libyaml's loader: the third-party CRDs are megabytes of YAML.
        for document in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                documents.append(document)
    return documents


def install_crds(api: client.ApiClient, crds: list[dict[str, Any]]) -> tuple[str, ...]:
    """Create every CRD, then wait until the API server serves all of them."""
    extensions = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for crd in crds:
        name = str(crd["metadata"]["name"])
        body: Any = crd  # the client takes plain dicts as well as its model classes
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeError(f"CRD {name} was refused: {exc.body}") from exc
        names.append(name)

    pending = set(names)
    deadline = time.monotonic() + ESTABLISHED_TIMEOUT
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            status = extensions.read_custom_resource_definition(name).status
            conditions = (status.conditions if status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"CRDs not established after {ESTABLISHED_TIMEOUT}s: {sorted(pending)}")
    return tuple(names)


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return tool_path("helm")
    except ToolsMissingError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    with contextlib.ExitStack() as stack:
        try:
            cp = stack.enter_context(control_plane(tmp_path_factory.mktemp("control-plane")))
        except ToolsMissingError as exc:
            pytest.fail(str(exc))
        api: client.ApiClient = stack.enter_context(
            config.new_client_from_config(config_file=str(cp.kubeconfig))  # type: ignore[no-untyped-call]
        )
        third_party = sorted(third_party_crd_dir().rglob("*.yaml"))
        crds = install_crds(api, load_crds(third_party + our_crd_files()))
        yield KubeCluster(control_plane=cp, api=api, crds=crds)
