"""Burn-rate thresholds and windows are those of the Google SRE workbook's table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import promql_parser
import pytest
from slo_test_support import DEFINITIONS, alerts

from fleet_slo.burn_rates import BURN_RATE_CONDITIONS, RECORDING_WINDOWS
from fleet_slo.catalog import fleet_metrics
from fleet_slo.definitions import load_all

# SRE workbook, "Alerting on SLOs", table 5-8 (30-day SLO): budget consumed, long window,
# short window, burn rate, notification.
WORKBOOK = [
    ("2%", "1h", "5m", Decimal("14.4"), "page"),
    ("5%", "6h", "30m", Decimal("6"), "page"),
    ("10%", "3d", "6h", Decimal("1"), "ticket"),
]
HOURS = {"5m": 5 / 60, "30m": 0.5, "1h": 1, "2h": 2, "6h": 6, "1d": 24, "3d": 72}


def test_conditions_are_the_workbook_table_plus_its_3x_daily_ticket() -> None:
    table = [(c.severity, c.long_window, c.short_window, c.factor) for c in BURN_RATE_CONDITIONS]
    assert table == [
        ("page", "1h", "5m", Decimal("14.4")),
        ("page", "6h", "30m", Decimal("6")),
        ("ticket", "1d", "2h", Decimal("3")),
        ("ticket", "3d", "6h", Decimal("1")),
    ]


@pytest.mark.parametrize(("consumed", "long", "short", "factor", "severity"), WORKBOOK)
def test_burn_rate_spends_the_stated_budget_share_in_its_long_window(
    consumed: str, long: str, short: str, factor: Decimal, severity: str
) -> None:
    # burn rate = budget share consumed * SLO period / long window
    share = Decimal(consumed.rstrip("%")) / 100
    assert share * 30 * 24 / Decimal(str(HOURS[long])) == factor
    assert (severity, long, short, factor) in [
        (c.severity, c.long_window, c.short_window, c.factor) for c in BURN_RATE_CONDITIONS
    ]


def test_each_short_window_is_a_twelfth_of_its_long_window() -> None:
    for condition in BURN_RATE_CONDITIONS:
        assert HOURS[condition.short_window] * 12 == HOURS[condition.long_window]


def test_recording_windows_cover_every_alert_window() -> None:
    used = {w for c in BURN_RATE_CONDITIONS for w in (c.long_window, c.short_window)}
    assert set(RECORDING_WINDOWS) == used == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}


def _value(node: promql_parser.Expr) -> float:
    """Evaluate a constant PromQL expression such as `(14.4 * 0.001)`."""
    if isinstance(node, promql_parser.NumberLiteral):
        return float(node.val)
    if isinstance(node, promql_parser.ParenExpr):
        return _value(node.expr)
    assert isinstance(node, promql_parser.BinaryExpr), node
    assert str(node.op) == "*", node
    return _value(node.lhs) * _value(node.rhs)


def _comparisons(node: promql_parser.Expr) -> list[tuple[str, str, float]]:
    """(record name, comparison, threshold) of every `recorded > constant` in an alert."""
    if isinstance(node, promql_parser.ParenExpr):
        return _comparisons(node.expr)
    assert isinstance(node, promql_parser.BinaryExpr), node
    op = str(node.op)
    if op in {"and", "or"}:
        return _comparisons(node.lhs) + _comparisons(node.rhs)
    assert isinstance(node.lhs, promql_parser.VectorSelector), node
    return [(node.lhs.name or "", op, _value(node.rhs))]


def _budgets() -> dict[tuple[str, str], float]:
    """(service, slo) → error budget as a ratio, from the SLO files."""
    services = load_all(DEFINITIONS, fleet_metrics())
    return {(s.service, slo.name): float(slo.error_budget) for s in services for slo in s.slos}


@pytest.mark.parametrize("alert", alerts(), ids=[a["alert"] for a in alerts()])
def test_alert_thresholds_are_factor_times_budget_on_both_windows(alert: dict[str, Any]) -> None:
    labels = alert["labels"]
    assert isinstance(labels, dict)
    budget = _budgets()[labels["service"], labels["slo"]]
    assert 0 < budget < 0.07
    severity = labels["severity"]
    expected = {
        (f"slo:sli_error:ratio_rate{window}", ">", float(c.factor) * budget)
        for c in BURN_RATE_CONDITIONS
        if c.severity == severity
        for window in (c.long_window, c.short_window)
    }
    found = _comparisons(promql_parser.parse(alert["expr"]))
    assert len(found) == 4
    assert {(name, op, round(value, 10)) for name, op, value in found} == {
        (name, op, round(value, 10)) for name, op, value in expected
    }


def test_every_slo_has_one_page_and_one_ticket_alert() -> None:
    by_slo: dict[tuple[str, str], list[str]] = {}
    for alert in alerts():
        labels = alert["labels"]
        by_slo.setdefault((labels["service"], labels["slo"]), []).append(labels["severity"])
    assert set(by_slo) == set(_budgets())
    assert all(sorted(severities) == ["page", "ticket"] for severities in by_slo.values())
