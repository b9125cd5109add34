"""A freshly started catalog exports every series whose labels it knows at start, at 0: the
dashboards and alerts on them see a value before the first event, not "no data"."""

from __future__ import annotations

from catalog.settings import CatalogSettings
from fleetctl.fresh_metrics import fresh_metrics
from fleetctl.testing import ServiceUnderTest

CONSUMED = ("order.placed.v1", "order.cancelled.v1")
CONSUMER_OUTCOMES = ("processed", "duplicate", "retried", "dead_lettered")


def test_every_series_known_at_start_is_exported_at_zero(
    catalog_service: ServiceUnderTest[CatalogSettings],
) -> None:
    expected: list[tuple[str, dict[str, str]]] = [
        *(
            ("catalog_cache_requests_total", {"result": result})
            for result in ("hit", "miss", "bypass", "error")
        ),
        ("catalog_stock_reservations_total", {"outcome": "reserved"}),
        ("catalog_stock_reservations_total", {"outcome": "rejected"}),
        *(
            ("events_consumed_total", {"event_type": event_type, "outcome": outcome})
            for event_type in CONSUMED
            for outcome in CONSUMER_OUTCOMES
        ),
        *(("event_handling_duration_seconds_count", {"event_type": t}) for t in CONSUMED),
        ("retention_purged_rows_total", {"table": "outbox"}),
        ("retention_purged_rows_total", {"table": "inbox"}),
    ]

    scrape = fresh_metrics(catalog_service.build_app, catalog_service.settings())

    not_zero = [(name, labels) for name, labels in expected if scrape.value(name, **labels) != 0]
    assert not_zero == []
