"""The rule files are valid Prometheus rules and their alerts behave as their promtool unit
tests say (observability/prometheus/tests); every alert carries what on-call needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.observability.support import OBSERVABILITY, RULE_FILES, RULE_TESTS, rules

SEVERITIES = {"critical", "warning"}


def promtool(*args: str | Path) -> None:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: scripts/install.sh installs it (Debian's prometheus)")
    result = subprocess.run(
        [binary, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=OBSERVABILITY / "prometheus",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_files_exist() -> None:
    names = {path.name for path in RULE_FILES}
    assert names == {"recording-rules.yaml", "alerting-rules.yaml"}
    assert RULE_TESTS, "no promtool unit tests"


def test_promtool_checks_the_rules() -> None:
    promtool("check", "rules", *RULE_FILES)


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    promtool("test", "rules", *RULE_TESTS)


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    alerts = [rule for _, rule in rules() if "alert" in rule]
    assert alerts
    for alert in alerts:
        assert alert.get("labels", {}).get("severity") in SEVERITIES, alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary"), alert["alert"]
        assert annotations.get("description"), alert["alert"]


def test_every_alert_is_exercised_by_a_promtool_test() -> None:
    tested = "".join(path.read_text() for path in RULE_TESTS)
    untested = [
        rule["alert"]
        for _, rule in rules()
        if "alert" in rule and f"alertname: {rule['alert']}\n" not in tested
    ]
    assert untested == []
