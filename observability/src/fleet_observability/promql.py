"""PromQL as the dashboards write it: Grafana variables substituted, then parsed for real."""

from __future__ import annotations

import re

import promql_parser

RATE_WINDOW = "$__rate_interval"

# Grafana replaces these before Prometheus sees the query; any valid duration parses the same.
_GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b")
# Any dashboard variable, `$name` or `${name}` (with a `:format` or not).
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def rate_interval(interval_seconds: float, scrape_interval_seconds: float) -> float:
    """Grafana's `$__rate_interval`: `$__interval` plus one scrape interval of the data source,
    and never under four scrape intervals, so a `rate()` always spans enough samples."""
    return max(interval_seconds + scrape_interval_seconds, 4 * scrape_interval_seconds)


def _duration(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def as_grafana_sends(
    expr: str, *, scrape_interval_seconds: float, interval_seconds: float, range_seconds: float
) -> str:
    """The query Grafana sends to Prometheus for a panel's `expr`: `$__interval` is the panel's
    step, `$__rate_interval` follows from it and the data source's scrape interval
    (`rate_interval`), `$__range` is the dashboard's time range. The dashboards declare no other
    variable in a query (only the data source), so any other one is refused, not sent as is."""
    values = {
        "__interval": _duration(interval_seconds),
        "__rate_interval": _duration(rate_interval(interval_seconds, scrape_interval_seconds)),
        "__range": _duration(range_seconds),
    }

    def fill(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if name not in values:
            raise ValueError(f"dashboard variable ${name} in {expr!r} has no value to send")
        return values[name]

    return _GRAFANA_VARIABLE.sub(fill, expr)


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
