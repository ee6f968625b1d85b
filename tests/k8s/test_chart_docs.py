"""What holds the chart, the images, skaffold and kind together, checked without a cluster.

The chart's components are the written services of services/registry.py, the notification
workers of `realtimeorder worker` and the web apps; the chart README's parameter tables are
generated from values.yaml; the images' user and entry point are the ones the chart and
pyproject.toml expect; skaffold.yaml builds each image once and hands every built image to helm;
kind-config.yaml maps the ingress ports.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

from services import registry

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "realtimeorder"
COMPONENTS = re.compile(r'{{- define "realtimeorder.components" -}}\n(.*?){{- end -}}', re.DOTALL)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def chart_components() -> dict[str, dict[str, str]]:
    """The component list of templates/_component.tpl (plain YAML in its define), by name."""
    match = COMPONENTS.search((CHART / "templates" / "_component.tpl").read_text(encoding="utf-8"))
    assert match, "_component.tpl defines no realtimeorder.components"
    return {component["name"]: component for component in yaml.safe_load(match[1])}


def test_chart_components_are_the_written_services_of_the_registry_and_the_web_apps() -> None:
    components = chart_components()
    values = load(CHART / "values.yaml")
    services = {name for name, c in components.items() if c["type"] == "service"}
    assert services == set(registry.runnable()), "services/registry.py and _component.tpl differ"
    for service in map(registry.service, services):
        component = components[service.name]
        assert component["key"] == service.name
        assert component.get("urlVariable") == service.url_variable, service.name
        block = values[service.name]
        assert block["containerPort"] == block["service"]["port"] == service.default_port
    web = {name for name, c in components.items() if c["type"] == "web"}
    workers = {name for name, c in components.items() if c["type"] == "worker"}
    assert web | workers == set(components) - services
    assert not web & workers
    assert not (web | workers) & {service.name for service in registry.SERVICES}
    assert all(values[components[name]["key"]]["image"]["repository"] for name in web)


def test_chart_workers_are_the_channels_the_cli_runs_on_the_service_queues() -> None:
    """One worker component per channel of `realtimeorder worker`, each on the work queue
    services/notifications/topology.py names, with its values block under workers.<channel>."""
    from services.cli import WORKER_CHANNELS
    from services.notifications.domain import Channel
    from services.notifications.topology import WORK_QUEUES

    values = load(CHART / "values.yaml")
    workers = {c["channel"]: c for c in chart_components().values() if c["type"] == "worker"}
    assert set(workers) == set(WORKER_CHANNELS)
    for channel, component in workers.items():
        assert component["name"] == f"{channel}-worker"
        assert component["key"] == f"workers.{channel}"
        assert component["queue"] == WORK_QUEUES[Channel(channel)]
        assert values["workers"][channel]["enabled"] is True
    queues = {q["name"] for q in values["notificationQueues"]["queues"]}
    assert queues == set(WORK_QUEUES.values()), "each worker's queue is a NotificationQueue"


def dockerfile_stage(path: Path, stage: str) -> str:
    """The instructions of one named stage of a Dockerfile."""
    text = path.read_text(encoding="utf-8")
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)
    for body in stages[1:]:
        if re.match(rf"\S+ AS {stage}\b", body):
            return body
    raise AssertionError(f"{path.name} has no stage {stage}")


def test_readme_parameters_are_generated_from_values() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chart-readme.py"), "--check", str(CHART)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_service_image_runs_as_the_user_the_chart_expects() -> None:
    runtime = dockerfile_stage(ROOT / "services" / "Dockerfile", "runtime")
    values = load(CHART / "values.yaml")
    uid = values["podSecurityContext"]["runAsUser"]
    assert re.search(rf"^USER {uid}:{uid}$", runtime, flags=re.MULTILINE)
    assert "build-essential" not in runtime, "no compiler in the runtime image"
    entrypoint = re.search(r'^ENTRYPOINT \["(\S+)"\]$', runtime, flags=re.MULTILINE)
    assert entrypoint is not None
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert scripts[entrypoint.group(1)] == "services.cli:main"


def test_web_image_runs_as_the_user_and_port_the_chart_expects() -> None:
    dockerfile = ROOT / "frontend" / "Dockerfile"
    runtime = dockerfile_stage(dockerfile, "runtime")
    values = load(CHART / "values.yaml")
    app = values["userApp"]
    uid = app["podSecurityContext"]["runAsUser"]
    assert re.search(rf"^USER {uid}:{uid}$", runtime, flags=re.MULTILINE)
    assert f"EXPOSE {app['containerPort']}" in runtime
    nginx = (ROOT / "frontend" / "nginx" / "default.conf").read_text(encoding="utf-8")
    assert f"listen {app['containerPort']};" in nginx
    assert "location = /healthz" in nginx


def test_skaffold_builds_each_image_once_and_hands_it_to_helm() -> None:
    skaffold = load(ROOT / "skaffold.yaml")
    assert skaffold["apiVersion"] == "skaffold/v4beta13"
    artifacts = list(skaffold["build"]["artifacts"])
    templates: dict[str, str] = dict(skaffold["deploy"]["helm"]["releases"][0]["setValueTemplates"])
    for profile in skaffold["profiles"]:
        for patch in profile["patches"]:
            if patch["path"] == "/build/artifacts/-":
                artifacts.append(patch["value"])
            prefix = "/deploy/helm/releases/0/setValueTemplates/"
            if patch["path"].startswith(prefix):
                templates[patch["path"].removeprefix(prefix)] = patch["value"]
    images = [a["image"] for a in artifacts]
    assert len(images) == len(set(images)), "an image is built twice"
    for artifact in artifacts:
        context = ROOT / artifact["context"]
        assert (context / artifact["docker"]["dockerfile"]).is_file()
        variable = re.sub(r"[^A-Za-z0-9_]", "_", artifact["image"])
        used = " ".join(templates.values())
        assert f"IMAGE_REPO_{variable}" in used, artifact["image"]
        assert f"IMAGE_TAG_{variable}" in used, artifact["image"]
    release = skaffold["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    values_files = list(release["valuesFiles"])
    for profile in skaffold["profiles"]:
        for patch in profile["patches"]:
            if patch["path"] == "/deploy/helm/releases/0/valuesFiles":
                values_files += patch["value"]
    assert all((ROOT / path).is_file() for path in values_files)


def test_kind_cluster_has_workers_and_ingress_ports() -> None:
    kind = load(ROOT / "kind-config.yaml")
    assert kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [node["role"] for node in kind["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") >= 1
    (control_plane,) = [n for n in kind["nodes"] if n["role"] == "control-plane"]
    assert control_plane["labels"]["ingress-ready"] == "true"
    ports = {m["containerPort"] for m in control_plane["extraPortMappings"]}
    assert ports == {80, 443}


def test_chart_ships_the_operators_crds_unchanged() -> None:
    chart = {p.name: load(p) for p in sorted((CHART / "crds").glob("*.yaml"))}
    operator = {p.name: load(p) for p in sorted((ROOT / "operator" / "crds").glob("*.yaml"))}
    assert chart, "charts/realtimeorder/crds/ is empty"
    assert chart == operator


OBSERVABILITY = ROOT / "observability"
CHART_OBSERVABILITY = CHART / "files" / "observability"


def test_the_chart_ships_the_observability_files_unchanged() -> None:
    """Helm reads only files inside the chart, so the chart keeps a copy of observability/'s
    rule files and dashboards (a copy rather than a symlink: `helm package`, GitOps
    controllers and Windows checkouts do not all follow links out of the chart). This fails
    until the copy is exactly observability/'s files, no more and no fewer."""
    wanted = [
        *sorted((OBSERVABILITY / "prometheus").glob("*-rules.yaml")),
        *sorted((OBSERVABILITY / "grafana").glob("*.json")),
    ]
    assert wanted
    copies = {
        p.relative_to(CHART_OBSERVABILITY) for p in CHART_OBSERVABILITY.rglob("*") if p.is_file()
    }
    expected = {p.relative_to(OBSERVABILITY) for p in wanted}
    fix = (
        "cp observability/prometheus/*-rules.yaml "
        "charts/realtimeorder/files/observability/prometheus/ && "
        "cp observability/grafana/*.json charts/realtimeorder/files/observability/grafana/"
    )
    assert copies == expected, f"the chart's copies are not observability/'s files: {fix}"
    stale = [
        str(path.relative_to(ROOT))
        for path in wanted
        if (CHART_OBSERVABILITY / path.relative_to(OBSERVABILITY)).read_bytes() != path.read_bytes()
    ]
    assert not stale, f"the chart's copies of {stale} differ: {fix}"
