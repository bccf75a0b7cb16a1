"""The Grafana dashboard and the alert rules name only metrics the gateway exports."""

from __future__ import annotations

import json
import pathlib
import re

import yaml

from dynamo_gateway_server.observability.metrics import Metrics

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "deploy"
SPEC_METRICS = {
    "dynamodb_operations_total",
    "dynamodb_operation_duration_seconds_bucket",
    "dynamodb_consumed_capacity_total",
    "dynamodb_items_returned_bucket",
    "dynamodb_throttles_total",
    "dynamodb_conditional_check_failures",
    "dynamodb_errors_total",
    "dynamodb_batch_unprocessed_items",
}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def exported_names() -> set[str]:
    """Every series name the exposition can contain, by metric type."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    return {
        family.name + suffix for family in Metrics().registry.collect() for suffix in suffixes[family.type]
    }


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels, keywords or durations)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if not following.startswith("(") and match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions += [
        variable["definition"].removeprefix("label_values(").split(",")[0]
        for variable in dashboard["templating"]["list"]
        if variable.get("definition")
    ]
    return expressions


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_parser_finds_metric_names_and_nothing_else() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, op) (rate(a_bucket{x="b_total"}[5m]))) / on(t) c_total > bool 1'
    )
    assert metric_names(expression) == {"a_bucket", "c_total"}


def test_the_dashboard_and_alerts_name_only_exported_metrics() -> None:
    exported = exported_names()
    referenced: set[str] = set()
    for expression in dashboard_expressions() + alert_expressions():
        names = metric_names(expression)
        assert names, f"no metric in {expression!r}"
        assert names <= exported, f"{sorted(names - exported)} are not exported (in {expression!r})"
        referenced |= names
    assert SPEC_METRICS <= referenced  # the dashboard shows every metric the spec asks for


def test_alerts_cover_throttling_errors_breaker_and_latency() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    by_name = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    assert "dynamodb_throttles_total" in metric_names(by_name["DynamoDBThrottling"])
    assert "dynamodb_operations_total" in metric_names(by_name["DynamoDBErrorRate"])
    assert "dynamodb_circuit_breaker_state" in metric_names(by_name["DynamoDBCircuitBreakerOpen"])
    assert "histogram_quantile(0.99" in by_name["DynamoDBLatencyP99High"]
