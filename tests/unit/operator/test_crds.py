"""The CRDs are shipped twice (operator/crds and the chart's crds/): they must stay identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
OPERATOR_CRDS = ROOT / "operator" / "crds"
CHART_CRDS = ROOT / "charts" / "realtimeorder" / "crds"
KINDS = {"EventTopic", "NotificationQueue", "WorkerAutoscaler"}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def test_chart_ships_exactly_the_operator_crds() -> None:
    operator_files = {p.name: p.read_bytes() for p in OPERATOR_CRDS.glob("*.yaml")}
    chart_files = {p.name: p.read_bytes() for p in CHART_CRDS.glob("*.yaml")}
    assert operator_files, "no CRDs found"
    assert chart_files == operator_files


@pytest.mark.parametrize("path", sorted(OPERATOR_CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_crd_is_served_and_stored_as_v1alpha1_with_status(path: Path) -> None:
    crd = load(path)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["spec"]["group"] == "realtimeorder.io"
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.realtimeorder.io"
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= columns
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"conditions", "observedGeneration"} <= set(status)


def test_all_three_kinds_exist() -> None:
    kinds = {load(p)["spec"]["names"]["kind"] for p in OPERATOR_CRDS.glob("*.yaml")}
    assert kinds == KINDS
