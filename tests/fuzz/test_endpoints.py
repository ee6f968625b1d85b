"""Property-based fuzz of every endpoint of every service: no input is answered with a 5xx.

Schemathesis generates requests from each service's own OpenAPI document, valid and invalid
(wrong types, out-of-range numbers, NUL and other control characters in strings, unknown
fields), and sends them to the service running on real Postgres, Redis, Kafka and RabbitMQ
with an admin's token. Any 5xx fails the test with the request that caused it; Hypothesis
shrinks it first. Bounded (FUZZ_EXAMPLES per operation, default 25) so the module runs in
well under two minutes once the servers are up; raise it locally for a deeper run.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from tests.fuzz.conftest import Fuzzed

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SERVICES = ("auth", "orders", "inventory", "notifications", "analytics")


def _schema(name: str) -> Any:
    main = importlib.import_module(f"services.{name}.main")
    document = main.create_app().openapi()
    config = SchemathesisConfig()
    config.projects.default.generation.update(modes=list(GenerationMode))
    return schemathesis.openapi.from_dict(document, config=config)


def _fuzz(name: str) -> Any:
    schema = _schema(name)

    @schema.parametrize()  # type: ignore[untyped-decorator]
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def test(case: Any, fuzzed: Fuzzed) -> None:
        response = case.call(base_url=fuzzed.urls[name], headers=fuzzed.headers[name], timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} answered {response.status_code}: "
            f"{response.text[:500]}\n{case.as_curl_command()}"
        )

    return test


test_auth = _fuzz("auth")
test_orders = _fuzz("orders")
test_inventory = _fuzz("inventory")
test_notifications = _fuzz("notifications")
test_analytics = _fuzz("analytics")
