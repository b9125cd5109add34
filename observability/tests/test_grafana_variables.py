"""Dashboard queries are sent as Grafana sends them: its interval variables filled in."""

from __future__ import annotations

import pytest

from fleet_observability import promql


def test_rate_interval_spans_four_scrapes_at_least() -> None:
    assert promql.rate_interval(interval_seconds=15, scrape_interval_seconds=15) == 60
    assert promql.rate_interval(interval_seconds=1, scrape_interval_seconds=1) == 4
    assert promql.rate_interval(interval_seconds=120, scrape_interval_seconds=15) == 135


def test_interval_variables_are_filled_in_as_durations() -> None:
    expr = (
        "sum(rate(x[$__rate_interval])) / sum(increase(x[${__range}])) + sum(rate(y[$__interval]))"
    )
    sent = promql.as_grafana_sends(
        expr, scrape_interval_seconds=1, interval_seconds=0.5, range_seconds=300
    )
    assert sent == "sum(rate(x[4s])) / sum(increase(x[300s])) + sum(rate(y[500ms]))"
    promql.parse(sent)


def test_a_variable_without_a_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\$job .*has no value"):
        promql.as_grafana_sends(
            'up{job="$job"}', scrape_interval_seconds=1, interval_seconds=1, range_seconds=60
        )
