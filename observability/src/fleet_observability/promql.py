"""PromQL as the dashboards write it: Grafana variables substituted, then parsed for real."""

from __future__ import annotations

import re

import promql_parser

RATE_WINDOW = "$__rate_interval"

# Grafana replaces these before Prometheus sees the query; any valid duration parses the same.
_GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b")


def parse(expr: str) -> promql_parser.Expr:
    """Parse a dashboard expression (raises ValueError when it is not valid PromQL)."""
    return promql_parser.parse(_GRAFANA_DURATIONS.sub("5m", expr))


def selected_metrics(expr: str) -> set[str]:
    """Names of every series the expression selects, as written (`..._bucket` included)."""
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(_name_of(node))
        return True

    promql_parser.walk(parse(expr), pre_visit=visit)
    return names


def selector_matchers(expr: str) -> list[dict[str, str]]:
    """For each vector selector, its `=` and `=~` matchers (label -> value or regex)."""
    found: list[dict[str, str]] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(
                {
                    m.name: m.value
                    for m in node.matchers.matchers
                    if m.op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.Re)
                }
            )
        return True

    promql_parser.walk(parse(expr), pre_visit=visit)
    return found


def _name_of(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    raise ValueError(f"selector without a metric name: {selector}")
