"""What the observability tests read: the rule and dashboard files, the PromQL in them, and the
metric names the services export."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import services

OBSERVABILITY = Path(__file__).resolve().parents[3] / "observability"
RULE_FILES = sorted((OBSERVABILITY / "prometheus").glob("*-rules.yaml"))
RULE_TESTS = sorted((OBSERVABILITY / "prometheus" / "tests").glob("*.yaml"))
DASHBOARDS = sorted((OBSERVABILITY / "grafana").glob("*.json"))

PROMETHEUS_OWN = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
"""Series Prometheus writes itself for every target."""

_KEYWORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
        "bool", "offset", "inf", "nan",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+(?::\w+)?\}?")
_NAME = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names and
    values, durations and Grafana variables left out)."""
    text = _VARIABLE.sub("1", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _NAME.findall(text) if name.lower() not in _KEYWORDS}


def rule_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in RULE_FILES:
        for group in rule_groups(path):
            for rule in group["rules"]:
                yield path, rule


def recorded_names() -> set[str]:
    return {rule["record"] for _, rule in rules() if "record" in rule}


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression of a dashboard: its panels' targets (rows included) and its
    variables' queries."""
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            # label_values(metric{...}, label): the metric is the first argument
            yield re.sub(r"^\s*label_values\((.*),\s*\w+\)\s*$", r"\1", query)


def load_dashboard(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def exported_names() -> set[str]:
    """Every series name some service can expose: all of `services` imported, then each
    metric family of the default registry with the sample names of its type."""
    for module in pkgutil.walk_packages(services.__path__, f"{services.__name__}."):
        importlib.import_module(module.name)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names
