"""The whole fleet side by side: per-service rate, errors and latency; messaging health."""

from __future__ import annotations

from fleet_observability.panels import Board, Graph, Row, q
from fleet_observability.queries import (
    CONSUMERS,
    PRODUCERS,
    SERVICES,
    any_of,
    quantile,
    ratio,
    selector,
    sum_rate,
)


def fleet_overview() -> Board:
    fleet = any_of(SERVICES)
    requests = "http_requests_total"
    return Board(
        uid="fleet-overview",
        title="Fleet / overview",
        description=(
            "Every service side by side. Series are keyed by `job`, which Prometheus sets to the "
            "service name (one scrape job per service)."
        ),
        tags=["fleet", "overview"],
        rows=[
            Row(
                "HTTP by service",
                [
                    Graph(
                        "Request rate by service",
                        [q(sum_rate(requests, fleet, by="job"), "{{job}}")],
                        unit="reqps",
                    ),
                    Graph(
                        "Error ratio (5xx) by service",
                        [
                            q(
                                ratio(
                                    sum_rate(requests, fleet, 'status=~"5.."', by="job"),
                                    sum_rate(requests, fleet, by="job"),
                                ),
                                "{{job}}",
                            )
                        ],
                        unit="percentunit",
                    ),
                    Graph(
                        "In-flight requests by service",
                        [
                            q(
                                f"sum by (job) ({selector('http_requests_in_flight', fleet)})",
                                "{{job}}",
                            )
                        ],
                    ),
                    Graph(
                        "Latency p50 by service",
                        [
                            q(
                                quantile(0.5, "http_request_duration_seconds", fleet, by="job"),
                                "{{job}}",
                            )
                        ],
                        unit="s",
                    ),
                    Graph(
                        "Latency p95 by service",
                        [
                            q(
                                quantile(0.95, "http_request_duration_seconds", fleet, by="job"),
                                "{{job}}",
                            )
                        ],
                        unit="s",
                    ),
                    Graph(
                        "Latency p99 by service",
                        [
                            q(
                                quantile(0.99, "http_request_duration_seconds", fleet, by="job"),
                                "{{job}}",
                            )
                        ],
                        unit="s",
                    ),
                ],
            ),
            Row(
                "Messaging by service",
                [
                    Graph(
                        "DLQ depth by service",
                        [
                            q(
                                f"max by (job) ({selector('dlq_depth', any_of(CONSUMERS))})",
                                "{{job}}.dlq",
                            )
                        ],
                        description="Dead letters waiting: `python -m <svc> dlq list`.",
                    ),
                    Graph(
                        "Outbox lag by service",
                        [
                            q(
                                "max by (job) "
                                f"({selector('outbox_lag_seconds', any_of(PRODUCERS))})",
                                "{{job}}",
                            )
                        ],
                        unit="s",
                    ),
                    Graph(
                        "Events dead-lettered by service",
                        [
                            q(
                                sum_rate(
                                    "events_consumed_total",
                                    any_of(CONSUMERS),
                                    'outcome="dead_lettered"',
                                    by="job",
                                ),
                                "{{job}}",
                            )
                        ],
                        unit="ops",
                    ),
                ],
            ),
        ],
    )
