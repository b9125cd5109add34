"""The metric catalog reads names, types, labels and bucket bounds from the fleet's own code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

from prometheus_client.metrics import MetricWrapperBase

from chassis.metrics import LATENCY_BUCKETS
from fleet_slo.catalog import METRIC_MODULES, fleet_metrics


def test_http_latency_histogram_has_the_chassis_buckets_and_labels() -> None:
    family = fleet_metrics().histogram("http_request_duration_seconds")
    assert family is not None
    assert family.buckets == tuple(float(b) for b in LATENCY_BUCKETS)
    assert family.labels == ("method", "route", "status")


def test_saga_histogram_bounds_are_read_from_orders() -> None:
    family = fleet_metrics().histogram("order_saga_duration_seconds")
    assert family is not None
    # The confirmation SLO's 2 s threshold is a declared bound; 3 s is not.
    assert 2.0 in family.buckets
    assert 3.0 not in family.buckets


def test_counters_are_found_by_their_total_series() -> None:
    catalog = fleet_metrics()
    webhooks = catalog.counter("webhook_deliveries_total")
    assert webhooks is not None
    assert webhooks.labels == ("outcome",)
    assert catalog.counter("webhook_deliveries") is None
    assert catalog.counter("dlq_depth_total") is None  # a gauge, not a counter


def test_le_values_match_the_client_library_exposition() -> None:
    family = fleet_metrics().histogram("order_saga_duration_seconds")
    assert family is not None
    assert [family.le_value(b) for b in (0.05, 1, 2.5)] == ["0.05", "1.0", "2.5"]


def test_every_service_metric_module_is_in_the_catalog() -> None:
    names = set(fleet_metrics().families)
    assert {
        "http_requests",
        "events_consumed",
        "gateway_upstream_requests",
        "catalog_cache_requests",
        "catalog_stock_reservations",
        "orders_placed",
        "worker_emails",
    } <= names


def test_every_module_that_declares_a_metric_is_in_the_catalog() -> None:
    """A metric declared in a module the catalog does not import would be invisible to the SLO
    and dashboard checks (the list must follow a move such as `events.py` to `handlers.py`)."""
    declaring: set[str] = set()
    for package in ("chassis", "gateway", "auth", "catalog", "orders", "worker"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            if any(
                isinstance(value, MetricWrapperBase) and _declared_in(module, name)
                for name, value in vars(module).items()
            ):
                declaring.add(info.name)

    assert declaring == set(METRIC_MODULES)


def _declared_in(module: ModuleType, name: str) -> bool:
    """Whether `name` is assigned in the module's own source (not imported from elsewhere)."""
    source = inspect.getsource(module)
    return f"\n{name} = " in f"\n{source}"
