"""A freshly started auth service exports every series whose labels it knows at start, at 0:
the dashboards and alerts on them see a value before the first event, not "no data"."""

from __future__ import annotations

from auth.main import build_app
from auth.settings import AuthSettings
from fleetctl.fresh_metrics import fresh_metrics


def test_every_series_known_at_start_is_exported_at_zero(settings: AuthSettings) -> None:
    expected: list[tuple[str, dict[str, str]]] = [
        ("retention_purged_rows_total", {"table": "outbox"}),
        *(
            ("background_loop_failures_total", {"loop": loop})
            for loop in ("outbox_relay", "retention")
        ),
    ]

    scrape = fresh_metrics(build_app, settings)

    not_zero = [(name, labels) for name, labels in expected if scrape.value(name, **labels) != 0]
    assert not_zero == []
