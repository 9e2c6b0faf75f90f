"""Prometheus alert rules (promtool's own unit tests) and the series every PromQL expression names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from collections.abc import Iterator

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from services.runtime import metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"
PROMETHEUS = DOCKER / "prometheus"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "riskwatch.json"
# Series Prometheus itself writes
PROMETHEUS_SERIES = frozenset({"up", "ALERTS"})

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None, reason="promtool is not installed; Debian: apt-get install --no-install-recommends prometheus"
)


def run_promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    assert promtool is not None
    return subprocess.run([promtool, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_promtool
def test_the_prometheus_configuration_and_its_rules_are_valid() -> None:
    result = run_promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_rule_has_a_unit_test_that_sees_it_fire() -> None:
    document = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    fired = {case["alertname"] for test in document["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    alerts = {str(rule["alert"]) for rule in rules()}
    assert alerts == fired
    assert {"RiskwatchConsumerLagGrowing", "RiskwatchDeadLetters", "RiskwatchOutboxStuck", "RiskwatchNoEvents",
            "RiskwatchWorkerDown"} <= alerts


# ---- metric names in PromQL ------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan"})


def metric_names(expression: str) -> set[str]:
    """The series an expression selects: identifiers that are not functions, keywords or labels."""
    text = _STRINGS.sub('""', expression)
    for pattern in (_MATCHERS, _RANGES, _GROUPING):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        called = text[match.end():].lstrip().startswith("(")
        if not called and match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def test_metric_names_reads_promql_as_prometheus_does() -> None:
    expression = ('sum by (topic) (rate(riskwatch_events_in_total{topic=~"agency\\\\..+"}[$__rate_interval])) == 0 '
                  'and on () count(up{job="riskwatch-worker"} == 1) > 0 or histogram_quantile(0.95, '
                  'sum(rate(riskwatch_batch_duration_seconds_bucket[5m])) by (le, stage)) offset 5m')
    assert metric_names(expression) == {"riskwatch_events_in_total", "up", "riskwatch_batch_duration_seconds_bucket"}


def defined_series() -> set[str]:
    """Every sample name services.runtime.metrics can expose."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for candidate in vars(metrics).values():
        if isinstance(candidate, MetricWrapperBase):
            for family in candidate.describe():
                names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def expressions() -> Iterator[tuple[str, str]]:
    for rule in rules():
        yield f"rule {rule['alert']}", str(rule["expr"])
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]


def test_every_promql_expression_names_only_series_the_code_defines() -> None:
    known = defined_series() | PROMETHEUS_SERIES
    assert {"riskwatch_consumer_lag_records", "riskwatch_dead_letters_total",
            "riskwatch_ingest_to_alert_seconds_bucket"} <= known
    checked = 0
    for where, expression in expressions():
        names = metric_names(expression)
        assert names, f"{where}: no series in {expression!r}"
        assert names <= known, f"{where}: unknown series {sorted(names - known)}"
        checked += 1
    assert checked >= 20


def test_the_dashboard_charts_every_riskwatch_series() -> None:
    charted = {name for where, expression in expressions() if where.startswith("panel")
               for name in metric_names(expression)}
    bases = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in charted}
    missing = {name for name in defined_series() if re.sub(r"_(total|bucket|count|sum)$", "", name) not in bases}
    assert not missing
