"""What on-call sees: every service exports its documented series, with bounded labels."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from e2e_support import RunningFleet, register_and_login
from prometheus_client.parser import text_string_to_metric_families

from fleet_observability import promql, render

pytestmark = pytest.mark.e2e

RED = {"http_requests", "http_request_duration_seconds", "http_requests_in_flight", "dependency_up"}
DATABASE = {"db_pool_checked_out_connections", "db_pool_max_connections"}
PRODUCER = {"outbox_backlog", "outbox_lag_seconds", "outbox_published"}
CONSUMER = {
    "events_consumed",
    "event_handling_duration_seconds",
    "dlq_depth",
    "consumer_messages_in_flight",
    "consumer_prefetch_limit",
}
DOCUMENTED = {
    "gateway": RED
    | {
        "gateway_upstream_requests",
        "gateway_upstream_duration_seconds",
        "gateway_rate_limited",
        "gateway_rate_limit_errors",
        "gateway_circuit_state",
    },
    "auth": RED | PRODUCER,
    "catalog": RED
    | PRODUCER
    | CONSUMER
    | {
        "catalog_cache_requests",
        "catalog_stock_reservations",
        "catalog_stock_released",
    },
    "orders": RED
    | PRODUCER
    | CONSUMER
    | {
        "orders_placed",
        "orders_confirmed",
        "orders_rejected",
        "orders_cancelled",
        "order_saga_duration_seconds",
    },
    "worker": RED
    | CONSUMER
    | {
        "worker_emails",
        "webhook_deliveries",
        "webhook_delivery_duration_seconds",
    },
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


async def _scrape(client: httpx.AsyncClient, url: str) -> dict[str, list[dict[str, str]]]:
    text = (await client.get(f"{url}/metrics")).text
    return {
        family.name: [sample.labels for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_every_service_exports_its_documented_series_with_bounded_labels(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    # Some traffic of every kind first: ids in paths, an error, a login.
    await register_and_login(gateway)
    await gateway.get("/v1/products/00000000-0000-4000-8000-000000000000")
    async with httpx.AsyncClient(timeout=5) as client:
        for service, expected in DOCUMENTED.items():
            families = await _scrape(client, running_fleet.stack.url(service))
            missing = expected - families.keys()
            assert not missing, f"{service} does not export {sorted(missing)}"
            for name, label_sets in families.items():
                for labels in label_sets:
                    ids = [v for v in labels.values() if UUID.search(v)]
                    assert not ids, f"{service} {name} has an id in its labels: {labels}"
            routes = {labels["route"] for labels in families["http_requests"] if "route" in labels}
            assert all(r == "unmatched" or r.startswith("/") for r in routes)


def _exported_series(text: str) -> set[str]:
    """Series names a scrape offers, from the declared families (present even before their
    first sample) expanded by type."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {sample.name for sample in family.samples}
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


async def test_every_dashboard_query_uses_series_the_running_fleet_exports(
    running_fleet: RunningFleet,
) -> None:
    exported: set[str] = set()
    async with httpx.AsyncClient(timeout=5) as client:
        for service in DOCUMENTED:
            text = (await client.get(f"{running_fleet.stack.url(service)}/metrics")).text
            exported |= _exported_series(text)
    dashboards = sorted((render.repo_root() / render.OUTPUT_DIR).glob("*.json"))
    assert dashboards
    referenced: dict[str, set[str]] = {}
    for path in dashboards:
        for panel in render.panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                for name in promql.selected_metrics(target["expr"]):
                    referenced.setdefault(name, set()).add(f"{path.stem}: {panel['title']}")
    unknown = {name: sorted(where) for name, where in referenced.items() if name not in exported}
    assert not unknown, f"dashboards query series no service exports: {unknown}"
