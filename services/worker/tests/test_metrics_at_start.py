"""A freshly started worker exports every series whose labels it knows at start, at 0: the
dashboards and alerts on them see a value before the first event, not "no data"."""

from __future__ import annotations

from fleetctl.fresh_metrics import fresh_metrics
from fleetctl.testing import ServiceUnderTest
from worker.settings import WorkerSettings

CONSUMED = (
    "user.registered.v1",
    "order.confirmed.v1",
    "order.rejected.v1",
    "order.cancelled.v1",
)
MAIL_KINDS = ("welcome", "order_confirmed", "order_rejected", "order_cancelled", "export_ready")
CONSUMER_OUTCOMES = ("processed", "duplicate", "retried", "dead_lettered")


def test_every_series_known_at_start_is_exported_at_zero(
    worker_service: ServiceUnderTest[WorkerSettings],
) -> None:
    expected: list[tuple[str, dict[str, str]]] = [
        *(
            ("worker_emails_total", {"kind": kind, "outcome": outcome})
            for kind in MAIL_KINDS
            for outcome in ("sent", "retried", "failed")
        ),
        *(
            ("webhook_deliveries_total", {"outcome": outcome})
            for outcome in ("delivered", "retried", "failed")
        ),
        *(
            ("events_consumed_total", {"event_type": event_type, "outcome": outcome})
            for event_type in CONSUMED
            for outcome in CONSUMER_OUTCOMES
        ),
        *(("event_handling_duration_seconds_count", {"event_type": t}) for t in CONSUMED),
    ]

    scrape = fresh_metrics(worker_service.build_app, worker_service.settings())

    not_zero = [(name, labels) for name, labels in expected if scrape.value(name, **labels) != 0]
    assert not_zero == []
