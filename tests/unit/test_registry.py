"""services/registry.py is the one list of services, and the project's other lists agree with it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from services.registry import SERVICES, SERVICES_DIR, UPSTREAMS, Service, runnable, service

ROOT = Path(__file__).resolve().parents[2]

# The seed's ports and gateway variables, which deployments and scripts already use.
SEED = (
    Service("gateway", 3000, None),
    Service("auth", 3001, "AUTH_SERVICE_URL"),
    Service("orders", 3002, "ORDER_SERVICE_URL"),
    Service("inventory", 3003, "INVENTORY_SERVICE_URL"),
    Service("notifications", 3004, "NOTIFICATION_SERVICE_URL"),
    Service("analytics", 3005, "ANALYTICS_SERVICE_URL"),
)


def import_linter_contract(name: str) -> dict[str, list[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"] == name]
    return dict(contract)


def test_the_seed_services_keep_their_ports_and_variables() -> None:
    for seed in SEED:
        assert service(seed.name) == seed


def test_names_ports_and_variables_are_unique() -> None:
    for field in ("name", "default_port", "url_variable"):
        values = [getattr(s, field) for s in SERVICES]
        assert len(values) == len(set(values)), field
    assert [s.name for s in SERVICES if s.url_variable is None] == ["gateway"]
    assert service("gateway") not in UPSTREAMS


def test_every_service_package_is_in_the_registry() -> None:
    packages = {path.parent.name for path in SERVICES_DIR.glob("*/main.py")}
    assert packages == set(runnable()), "add the package to services/registry.py"


def test_a_service_without_a_package_says_what_is_missing() -> None:
    assert service("auth").missing() is None
    reason = Service("nosuchservice", 3999, "NO_URL").missing()
    assert reason == "services/nosuchservice/main.py does not exist yet"
    with pytest.raises(KeyError, match=r"'nosuchservice' is not in services/registry\.py"):
        service("nosuchservice")


def test_the_registry_imports_no_service() -> None:
    nodes = list(ast.walk(ast.parse((SERVICES_DIR / "registry.py").read_text(encoding="utf-8"))))
    modules = [a.name for node in nodes if isinstance(node, ast.Import) for a in node.names]
    modules += [node.module or "" for node in nodes if isinstance(node, ast.ImportFrom)]
    assert [m for m in modules if m.split(".")[0] == "services"] == []


def test_import_contracts_name_exactly_the_written_services() -> None:
    written = {f"services.{name}" for name in runnable()}
    kit = import_linter_contract("The shared kit imports no service")
    assert set(kit["forbidden_modules"]) == written, "pyproject.toml: the kit's forbidden list"
    registry = import_linter_contract("The registry of services imports no service")
    assert set(registry["forbidden_modules"]) == written, "pyproject.toml: the registry's list"
    independence = import_linter_contract("Services never import each other")
    assert set(independence["modules"]) == written, "pyproject.toml: the independence list"
    anatomy = import_linter_contract(
        "Service anatomy: entry points -> service -> adapters and repository -> domain"
    )
    gateway = import_linter_contract(
        "Gateway anatomy: entry points -> proxy service -> routing table and headers"
    )
    assert set(anatomy["containers"]) | set(gateway["containers"]) == written, (
        "pyproject.toml: every service's anatomy is under a layers contract"
    )
