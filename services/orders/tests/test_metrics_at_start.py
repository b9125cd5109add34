"""A freshly started orders service exports every series whose labels it knows at start, at 0:
the dashboards and alerts on them see a value before the first event, not "no data"."""

from __future__ import annotations

from fleetctl.fresh_metrics import fresh_metrics
from fleetctl.testing import ServiceUnderTest
from orders.settings import OrdersSettings

CONSUMED = ("stock.reserved.v1", "stock.rejected.v1")
CONSUMER_OUTCOMES = ("processed", "duplicate", "retried", "dead_lettered")


def test_every_series_known_at_start_is_exported_at_zero(
    orders_service: ServiceUnderTest[OrdersSettings],
) -> None:
    expected: list[tuple[str, dict[str, str]]] = [
        *(
            ("events_consumed_total", {"event_type": event_type, "outcome": outcome})
            for event_type in CONSUMED
            for outcome in CONSUMER_OUTCOMES
        ),
        *(("event_handling_duration_seconds_count", {"event_type": t}) for t in CONSUMED),
    ]

    scrape = fresh_metrics(orders_service.build_app, orders_service.settings())

    not_zero = [(name, labels) for name, labels in expected if scrape.value(name, **labels) != 0]
    assert not_zero == []
