"""Every metric a dashboard queries is one the services really export, under that exact name."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from prometheus_client import REGISTRY

from fleet_observability import promql, render
from fleet_slo.catalog import METRIC_MODULES

# Every module that declares Fleet metrics (importing one registers its metrics in REGISTRY):
# the SLO metric catalog's list, which a test keeps complete.

# The series a metric family is exposed as, by its type (prometheus_client's exposition).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}


def exported_series() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in SERIES_SUFFIXES.get(family.type, ("",))
    }


def queried_metrics() -> dict[str, set[str]]:
    """Metric name -> the `<uid> / <panel>` places that query it."""
    places: dict[str, set[str]] = {}
    for text in render.render_all().values():
        document: dict[str, Any] = json.loads(text)
        for panel in render.panels(document):
            for target in panel["targets"]:
                for name in promql.selected_metrics(target["expr"]):
                    places.setdefault(name, set()).add(f"{document['uid']} / {panel['title']}")
    return places


def test_every_queried_metric_is_exported_by_the_code() -> None:
    exported = exported_series()
    queried = queried_metrics()

    unknown = {name: sorted(where) for name, where in queried.items() if name not in exported}
    assert not unknown, f"dashboards query metrics no service exports: {unknown}"


def test_every_fleet_metric_appears_on_some_dashboard() -> None:
    exported_series()  # imports every metric module first
    fleet_families = {
        family.name for family in REGISTRY.collect() if family.name.startswith(FLEET_PREFIXES)
    }
    queried = queried_metrics()

    def shown(family: str) -> bool:
        return any(name == family or name.startswith(f"{family}_") for name in queried)

    assert len(fleet_families) >= 20
    assert sorted(family for family in fleet_families if not shown(family)) == []


FLEET_PREFIXES = (
    "http_request",
    "dependency_up",
    "outbox_",
    "events_consumed",
    "event_handling",
    "dlq_",
    "gateway_",
    "catalog_",
    "orders_",
    "order_saga",
    "worker_",
    "webhook_",
    "command_queue",
    "export",
    "reconciliation_",
)
SAGA = 'order_saga_duration_seconds{job="orders"}'
SAGA_BUCKETS = 'order_saga_duration_seconds_bucket{job="orders"}'


@pytest.mark.parametrize(
    ("expr", "accepted"),
    [
        (f"histogram_quantile(0.9, sum by (le) (rate({SAGA_BUCKETS}[$__rate_interval])))", True),
        ('rate(order_saga_duration_seconds_count{job="orders"}[5m])', True),
        (SAGA, False),  # a histogram has no bare series
        ('rate(orders_placed{job="orders"}[5m])', False),  # a counter is exposed with _total
        ('rate(orders_placed_total{job="orders"}[5m])', True),
        ('max(dlq_depth{job="worker"}) + on() max(outbox_lag_seconds_total)', False),
    ],
)
def test_exported_name_check_resolves_suffixes_by_metric_type(expr: str, accepted: bool) -> None:
    assert (promql.selected_metrics(expr) <= exported_series()) is accepted
