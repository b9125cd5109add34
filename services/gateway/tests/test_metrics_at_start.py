"""A freshly started gateway exports every series whose labels it knows at start, at 0: the
dashboards and alerts on them see a value before the first event, not "no data"."""

from __future__ import annotations

from collections.abc import Callable

from fleetctl.fresh_metrics import fresh_metrics
from gateway.main import build_app
from gateway.settings import GatewaySettings

UPSTREAMS = ("auth", "catalog", "orders", "worker")
OUTCOMES = ("ok", "upstream_error", "unavailable", "timeout", "bad_gateway")


def test_every_series_known_at_start_is_exported_at_zero(
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    expected: list[tuple[str, dict[str, str]]] = [
        *(
            (name, {"upstream": upstream})
            for name in (
                "gateway_upstream_retries_total",
                "gateway_circuit_rejected_total",
                "gateway_upstream_throttled_total",
                "gateway_upstream_duration_seconds_count",
                "gateway_circuit_state",
            )
            for upstream in UPSTREAMS
        ),
        *(
            ("gateway_upstream_requests_total", {"upstream": upstream, "outcome": outcome})
            for upstream in UPSTREAMS
            for outcome in OUTCOMES
        ),
        ("gateway_rate_limited_total", {"policy": "default"}),
        ("gateway_rate_limited_total", {"policy": "login"}),
        ("gateway_bff_degraded_total", {"part": "featured"}),
        ("gateway_bff_degraded_total", {"part": "recent_orders"}),
        *(
            ("gateway_cache_requests_total", {"result": result})
            for result in ("hit", "stale", "miss", "coalesced", "bypass", "unavailable")
        ),
        *(
            ("gateway_cache_errors_total", {"operation": operation})
            for operation in ("lookup", "store", "purge")
        ),
    ]

    scrape = fresh_metrics(build_app, gateway_settings())

    not_zero = [(name, labels) for name, labels in expected if scrape.value(name, **labels) != 0]
    assert not_zero == []
