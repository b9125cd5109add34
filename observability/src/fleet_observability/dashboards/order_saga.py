"""The order saga across orders and catalog: outcomes, duration, stock, and the relays between."""

from __future__ import annotations

from fleet_observability.panels import Board, Graph, Row, q
from fleet_observability.queries import any_of, quantile, selector, sum_rate


def order_saga() -> Board:
    orders, catalog = "orders", "catalog"
    saga = "order_saga_duration_seconds"
    return Board(
        uid="fleet-order-saga",
        title="Fleet / order saga",
        description=(
            "Orders placed by the orders service are confirmed or rejected after catalog reserves "
            'stock; both hops travel through an outbox relay. Queries select job="orders" and '
            'job="catalog" (Prometheus job = service name).'
        ),
        tags=["fleet", "saga", "orders", "catalog"],
        rows=[
            Row(
                "Outcomes",
                [
                    Graph(
                        "Orders placed, confirmed, cancelled",
                        [
                            q(sum_rate("orders_placed_total", orders), "placed"),
                            q(sum_rate("orders_confirmed_total", orders), "confirmed"),
                            q(sum_rate("orders_cancelled_total", orders), "cancelled"),
                        ],
                        unit="ops",
                    ),
                    Graph(
                        "Orders rejected by reason",
                        [q(sum_rate("orders_rejected_total", orders, by="reason"), "{{reason}}")],
                        unit="ops",
                        description="out_of_stock, timeout (no answer in time) or other.",
                    ),
                    Graph(
                        "Admission control",
                        [
                            q(
                                f"min({selector('orders_admission_share', orders)})",
                                "admitted share",
                            ),
                            q(sum_rate("orders_admission_refused_total", orders), "refused/s"),
                        ],
                        description=(
                            "Share of new orders admitted (1 = all) and orders refused with 503 "
                            "because recent orders were decided later than "
                            "ORDER_ADMISSION_TARGET_SECONDS."
                        ),
                    ),
                    Graph(
                        "Saga duration p95 / p99",
                        [
                            q(quantile(0.95, saga, orders), "p95"),
                            q(quantile(0.99, saga, orders), "p99"),
                        ],
                        unit="s",
                        description="From placing an order to its confirmation or rejection.",
                    ),
                ],
            ),
            Row(
                "Stock and relays",
                [
                    Graph(
                        "Stock reservations: reserved vs rejected",
                        [
                            q(
                                sum_rate("catalog_stock_reservations_total", catalog, by="outcome"),
                                "{{outcome}}",
                            )
                        ],
                        unit="ops",
                    ),
                    Graph(
                        "Relay lag: orders and catalog",
                        [
                            q(
                                "max by (job) "
                                f"({selector('outbox_lag_seconds', any_of((orders, catalog)))})",
                                "{{job}}",
                            )
                        ],
                        unit="s",
                        description="Age of the oldest unpublished outbox row of each service.",
                    ),
                    Graph(
                        "Saga events consumed by outcome",
                        [
                            q(
                                sum_rate(
                                    "events_consumed_total",
                                    any_of((orders, catalog)),
                                    by="job, outcome",
                                ),
                                "{{job}} {{outcome}}",
                            )
                        ],
                        unit="ops",
                    ),
                ],
            ),
        ],
    )
