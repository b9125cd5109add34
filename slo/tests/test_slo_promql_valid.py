"""Every generated expression is valid PromQL over metrics the fleet's code really exports."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY
from slo_test_support import all_rules, manifests, promtool, recordings

from fleet_slo.burn_rates import RECORDING_WINDOWS
from fleet_slo.catalog import fleet_metrics
from fleet_slo.promql import record_name

RULE_IDS = [
    rule.get("alert") or f"{rule['record']}:{rule['labels']['slo']}" for rule in all_rules()
]


def _selectors(expression: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expression), visit)
    return found


@pytest.mark.parametrize("rule", list(all_rules()), ids=RULE_IDS)
def test_expression_parses_as_promql(rule: dict[str, Any]) -> None:
    expression = rule["expr"]
    assert isinstance(expression, str)
    promql_parser.parse(expression)  # raises ValueError on invalid PromQL


def test_the_parser_used_refuses_invalid_promql() -> None:
    with pytest.raises(ValueError, match="paren"):
        promql_parser.parse("sum(rate(http_requests_total[5m])")


def _registered_series() -> set[str]:
    """Series names of every metric in the default registry, as Prometheus stores them."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_every_metric_in_an_expression_is_exported_by_the_code() -> None:
    fleet_metrics()  # imports every metric module of the fleet, registering its metrics
    registered = _registered_series()
    assert {"http_requests_total", "order_saga_duration_seconds_bucket"} <= registered
    recorded = {record_name(window) for window in RECORDING_WINDOWS}
    used = {s.name or "" for rule in all_rules() for s in _selectors(rule["expr"])}
    assert used - recorded, "no raw metric found: the selector walk is broken"
    unknown = used - registered - recorded
    assert not unknown, f"metrics not exported by the fleet's code: {sorted(unknown)}"


def test_alerts_only_read_recorded_error_ratios() -> None:
    recorded = {rule["record"] for rule in recordings()}
    for rule in all_rules():
        if "alert" in rule:
            assert {s.name or "" for s in _selectors(rule["expr"])} <= recorded, rule["alert"]


def test_every_le_value_is_a_bucket_bound_the_client_library_exposes() -> None:
    catalog = fleet_metrics()
    for rule in recordings():
        for selector in _selectors(rule["expr"]):
            le = [m.value for m in selector.matchers.matchers if m.name == "le"]
            if not le:
                continue
            family = catalog.histogram((selector.name or "").removesuffix("_bucket"))
            assert family is not None, selector.name
            exposed = {family.le_value(bound) for bound in family.buckets}
            assert le[0] in exposed, f"{selector.name} has no bucket le={le[0]} ({exposed})"


def test_each_slo_records_its_error_ratio_over_every_window() -> None:
    by_slo: dict[tuple[str, str], list[str]] = {}
    for rule in recordings():
        key = (rule["labels"]["service"], rule["labels"]["slo"])
        by_slo.setdefault(key, []).append(rule["record"])
    assert by_slo
    expected = [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")]
    for key, records in by_slo.items():
        assert records == expected, key


def test_every_recording_rule_uses_its_window_in_every_range() -> None:
    for rule in recordings():
        window = rule["record"].removeprefix("slo:sli_error:ratio_rate")
        ranges: list[str] = []

        def visit(node: promql_parser.Expr, into: list[str] = ranges) -> None:
            if isinstance(node, promql_parser.MatrixSelector):
                into.append(promql_parser.display_duration(node.range))

        promql_parser.walk(promql_parser.parse(rule["expr"]), visit)
        assert ranges, rule
        assert set(ranges) == {window}, rule


def test_promtool_accepts_the_rule_groups(tmp_path: Path) -> None:
    for manifest in manifests():
        rules_file = tmp_path / f"{manifest['metadata']['name']}.yml"
        rules_file.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
        result = subprocess.run(
            [promtool(), "check", "rules", str(rules_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
