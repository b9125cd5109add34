"""One dashboard per service: the golden signals every service shares, then its own signals."""

from __future__ import annotations

from collections.abc import Callable

from fleet_observability.panels import Board, Graph, Row, q
from fleet_observability.queries import (
    CONSUMERS,
    PRODUCERS,
    quantile,
    ratio,
    selector,
    sum_rate,
)

QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
UP_DOWN = {"0": ("down", "red"), "1": ("up", "green")}
# Services that own a Postgres schema (the gateway has none).
DATABASE_OWNERS = ("auth", "catalog", "orders", "worker")
CIRCUIT_STATES = {"0": ("closed", "green"), "1": ("half-open", "orange"), "2": ("open", "red")}
# Rare events (exports, reconciliation runs) are counted and measured over an hour: the
# `$__rate_interval` of a short time range would mostly hold none.
RARE_WINDOW = "1h"
# How far back a completed reconciliation is remembered after the replica that ran it is gone
# (3 periods of RECONCILIATION_EVERY_SECONDS, what the ReconciliationStale alert allows).
RECONCILIATION_MEMORY = "3h"


def golden_signals(service: str) -> Board:
    rows = [_http(service)]
    if service in DATABASE_OWNERS:
        rows.append(_database(service))
    own = OWN_SIGNALS.get(service)
    if own is not None:
        rows.append(own(service))
    jobs = BACKGROUND_JOBS.get(service)
    if jobs is not None:
        rows.append(jobs(service))
    if service in PRODUCERS or service in CONSUMERS:
        rows.append(_messaging(service))
    return Board(
        uid=f"fleet-{service}",
        title=f"Fleet / {service}",
        description=(
            f'Golden signals of the {service} service. Queries select job="{service}": '
            "Prometheus must scrape each service as its own job named after it."
        ),
        tags=["fleet", "golden-signals", service],
        rows=rows,
    )


def _http(job: str) -> Row:
    requests = "http_requests_total"
    latency = [
        Graph(
            f"Latency {name} by route",
            [q(quantile(value, "http_request_duration_seconds", job, by="route"), "{{route}}")],
            unit="s",
        )
        for value, name in QUANTILES
    ]
    return Row(
        "HTTP golden signals",
        [
            Graph(
                "Request rate by route",
                [q(sum_rate(requests, job, by="route"), "{{route}}")],
                unit="reqps",
            ),
            Graph(
                "Error ratio (5xx)",
                [
                    q(
                        ratio(
                            sum_rate(requests, job, 'status=~"5.."'),
                            sum_rate(requests, job),
                        ),
                        "5xx / all",
                    )
                ],
                unit="percentunit",
                description="Share of requests answered with a 5xx status.",
            ),
            Graph(
                "Requests by status",
                [q(sum_rate(requests, job, by="status"), "{{status}}")],
                unit="reqps",
            ),
            *latency,
            Graph(
                "In-flight requests",
                [
                    q(f"sum({selector('http_requests_in_flight', job)})", "in flight"),
                    q(sum_rate("http_requests_shed_total", job), "shed/s"),
                ],
                description=(
                    "Requests being served, and those refused at once (503) because "
                    "MAX_IN_FLIGHT_REQUESTS were in flight already."
                ),
            ),
            Graph(
                "Dependencies up",
                [q(f"min by (dependency) ({selector('dependency_up', job)})", "{{dependency}}")],
                description="1 when the last readiness check of the dependency passed.",
                mappings=UP_DOWN,
            ),
        ],
    )


def _gateway(job: str) -> Row:
    upstream = "gateway_upstream_requests_total"
    edge_cache = "gateway_cache_requests_total"
    return Row(
        "Gateway: edge protection, cache and upstreams",
        [
            Graph(
                "Rate-limited requests (429) by policy",
                [q(sum_rate("gateway_rate_limited_total", job, by="policy"), "{{policy}}")],
                unit="reqps",
            ),
            Graph(
                "Rate-limit checks failed open (Redis errors)",
                [q(sum_rate("gateway_rate_limit_errors_total", job), "errors")],
                unit="ops",
            ),
            Graph(
                "Circuit state by upstream",
                [
                    q(
                        f"max by (upstream) ({selector('gateway_circuit_state', job)})",
                        "{{upstream}}",
                    )
                ],
                description="0 closed, 1 half-open, 2 open.",
                mappings=CIRCUIT_STATES,
            ),
            Graph(
                "Upstream errors by upstream and outcome",
                [
                    q(
                        sum_rate(upstream, job, 'outcome!="ok"', by="upstream, outcome"),
                        "{{upstream}} {{outcome}}",
                    )
                ],
                unit="ops",
                description="Failed attempts: upstream_error (5xx), unavailable, timeout, "
                "bad_gateway.",
            ),
            Graph(
                "Upstream requests by upstream",
                [q(sum_rate(upstream, job, by="upstream"), "{{upstream}}")],
                unit="ops",
            ),
            Graph(
                "Upstream latency p95 by upstream",
                [
                    q(
                        quantile(0.95, "gateway_upstream_duration_seconds", job, by="upstream"),
                        "{{upstream}}",
                    )
                ],
                unit="s",
            ),
            Graph(
                "Retries and refusals by upstream",
                [
                    q(
                        sum_rate("gateway_upstream_retries_total", job, by="upstream"),
                        "retries {{upstream}}",
                    ),
                    q(
                        sum_rate("gateway_circuit_rejected_total", job, by="upstream"),
                        "rejected {{upstream}}",
                    ),
                    q(
                        sum_rate("gateway_upstream_throttled_total", job, by="upstream"),
                        "throttled {{upstream}}",
                    ),
                ],
                unit="ops",
                description=(
                    "Retries of idempotent requests; requests refused without calling the "
                    "upstream: its circuit open, or throttled while it sheds load."
                ),
            ),
            Graph(
                "BFF parts served degraded",
                [q(sum_rate("gateway_bff_degraded_total", job, by="part"), "{{part}}")],
                unit="ops",
            ),
            Graph(
                "Edge cache: reads answered without the upstream",
                [
                    q(
                        ratio(
                            sum_rate(edge_cache, job, 'result=~"hit|stale|coalesced"'),
                            sum_rate(edge_cache, job, 'result!="bypass"'),
                        ),
                        "answered / cacheable reads",
                    )
                ],
                unit="percentunit",
                description="Hits, stale copies served while revalidated and reads coalesced "
                "onto another's fetch, among the GETs of cached routes the cache could serve "
                "(bypasses, authenticated or no-cache, left out).",
            ),
            Graph(
                "Edge cache requests by result, Redis errors by operation",
                [
                    q(sum_rate(edge_cache, job, by="result"), "{{result}}"),
                    q(
                        sum_rate("gateway_cache_errors_total", job, by="operation"),
                        "error {{operation}}",
                    ),
                ],
                unit="ops",
                description="unavailable: Redis failed or paused, the read went upstream; a "
                "failed purge leaves a stored copy until its lifetime ends.",
            ),
        ],
    )


def _catalog(job: str) -> Row:
    cache = "catalog_cache_requests_total"
    return Row(
        "Catalog: cache and stock",
        [
            Graph(
                "Cache hit ratio",
                [
                    q(
                        ratio(
                            sum_rate(cache, job, 'result="hit"'),
                            sum_rate(cache, job, 'result=~"hit|miss|bypass"'),
                        ),
                        "hits / lookups",
                    )
                ],
                unit="percentunit",
                description="Lookups are hits, misses and bypasses (cache cooling down after a "
                "Redis error); errors also count fills and invalidations, so they are shown "
                "apart.",
            ),
            Graph(
                "Cache requests by result",
                [q(sum_rate(cache, job, by="result"), "{{result}}")],
                unit="ops",
            ),
            Graph(
                "Stock reservations by outcome",
                [
                    q(
                        sum_rate("catalog_stock_reservations_total", job, by="outcome"),
                        "{{outcome}}",
                    ),
                    q(sum_rate("catalog_stock_released_total", job), "released"),
                ],
                unit="ops",
            ),
        ],
    )


def _orders(job: str) -> Row:
    return Row(
        "Orders: business and saga",
        [
            Graph(
                "Orders placed, confirmed, cancelled",
                [
                    q(sum_rate("orders_placed_total", job), "placed"),
                    q(sum_rate("orders_confirmed_total", job), "confirmed"),
                    q(sum_rate("orders_cancelled_total", job), "cancelled"),
                ],
                unit="ops",
            ),
            Graph(
                "Orders rejected by reason",
                [q(sum_rate("orders_rejected_total", job, by="reason"), "{{reason}}")],
                unit="ops",
            ),
            Graph(
                "Saga duration (placed to confirmed or rejected)",
                [
                    q(quantile(value, "order_saga_duration_seconds", job), name)
                    for value, name in QUANTILES
                ],
                unit="s",
            ),
        ],
    )


def _worker(job: str) -> Row:
    return Row(
        "Worker: e-mail and webhooks",
        [
            Graph(
                "E-mails by kind and outcome",
                [
                    q(
                        sum_rate("worker_emails_total", job, by="kind, outcome"),
                        "{{kind}} {{outcome}}",
                    )
                ],
                unit="ops",
            ),
            Graph(
                "Webhook deliveries by outcome",
                [q(sum_rate("webhook_deliveries_total", job, by="outcome"), "{{outcome}}")],
                unit="ops",
            ),
            Graph(
                "Webhook delivery duration",
                [
                    q(quantile(value, "webhook_delivery_duration_seconds", job), name)
                    for value, name in QUANTILES[1:]
                ],
                unit="s",
            ),
        ],
    )


def latest_reconciliation(job: str) -> str:
    """The replica that completed the latest reconciliation: its completion timestamp. Every
    replica exports the drift of the last run it completed itself (0 before its first), so only
    the one with the newest timestamp tells the truth about now."""
    completed = selector("reconciliation_last_completed_timestamp_seconds", job)
    return f"{completed} == on () group_left () max({completed} > 0)"


def _worker_jobs(job: str) -> Row:
    commands = 'event_type=~"export.generate.v1|reconciliation.run.v1"'
    completed = selector("reconciliation_last_completed_timestamp_seconds", job)
    return Row(
        "Worker: commands, exports and reconciliation",
        [
            Graph(
                "Command queue depth",
                [q(f"max({selector('command_queue_depth', job)})", f"{job}.commands waiting")],
                description=(
                    f"Commands ready in {job}.commands, not yet taken by a replica (KEDA scales "
                    "the worker on it). A depth that stays up while commands are handled: more "
                    "replicas or a larger COMMAND_PREFETCH; one that grows with nothing handled: "
                    "the command consumer is stuck."
                ),
            ),
            Graph(
                "Commands handled by type and outcome",
                [
                    q(
                        sum_rate("events_consumed_total", job, commands, by="event_type, outcome"),
                        "{{event_type}} {{outcome}}",
                    )
                ],
                unit="ops",
                description="The command consumer's outcomes: processed, duplicate, retried, "
                "dead_lettered (then in the worker's DLQ).",
            ),
            Graph(
                "Exports by format and outcome",
                [
                    q(
                        f"sum by (format, outcome) "
                        f"(increase({selector('exports_total', job)}[{RARE_WINDOW}]))",
                        "{{format}} {{outcome}}",
                    )
                ],
                description=(
                    f"Exports finished in the {RARE_WINDOW} before each point: ready, or failed "
                    "(for good, or still pending at EXPORT_DEADLINE_SECONDS). SLO: 99 % ready."
                ),
            ),
            Graph(
                "Export ready time",
                [
                    q(quantile(value, "export_ready_seconds", job, window=RARE_WINDOW), name)
                    for value, name in (QUANTILES[0], QUANTILES[2])
                ],
                unit="s",
                description=(
                    "From the request to the file in the bucket, over the exports ready in the "
                    f"{RARE_WINDOW} before each point. SLO: 99 % within 5 minutes (300 s)."
                ),
            ),
            Graph(
                "Reconciliation mismatches by kind (last run)",
                [
                    q(
                        f"max by (kind) ({selector('reconciliation_mismatches', job)} "
                        f"and ignoring (kind) ({latest_reconciliation(job)}))",
                        "{{kind}}",
                    )
                ],
                description=(
                    "Drift between orders and catalog found by the latest completed run, from "
                    "the replica that ran it; no data until a run completes after a restart. "
                    "Above 0: the ReconciliationDrift alert, and the run's report at "
                    "GET /v1/admin/reconciliations."
                ),
            ),
            Graph(
                "Last completed reconciliation age",
                [
                    q(
                        f"time() - max(max_over_time({completed}[{RECONCILIATION_MEMORY}]) > 0)",
                        "age of the last completed run",
                    ),
                ],
                unit="s",
                description=(
                    "Since any replica last completed a run, remembered "
                    f"{RECONCILIATION_MEMORY} across restarts (a replica's gauge is 0 until it "
                    "completes one itself). ReconciliationStale fires past 3 h."
                ),
            ),
            Graph(
                "Reconciliation runs by outcome",
                [
                    q(
                        f"sum by (outcome) "
                        f"(increase({selector('reconciliation_runs_total', job)}[{RARE_WINDOW}]))",
                        "{{outcome}}",
                    )
                ],
                description=(
                    f"Runs in the {RARE_WINDOW} before each point: completed, or failed attempts "
                    "(each retried by the consumer, then dead-lettered)."
                ),
            ),
        ],
    )


OWN_SIGNALS: dict[str, Callable[[str], Row]] = {
    "gateway": _gateway,
    "catalog": _catalog,
    "orders": _orders,
    "worker": _worker,
}


# Rows of the background work a service runs beside its requests and events.
BACKGROUND_JOBS: dict[str, Callable[[str], Row]] = {"worker": _worker_jobs}


def _database(job: str) -> Row:
    return Row(
        "Database",
        [
            Graph(
                "DB pool connections in use",
                [
                    q(f"max({selector('db_pool_checked_out_connections', job)})", "in use"),
                    q(f"max({selector('db_pool_max_connections', job)})", "pool maximum"),
                ],
                description="Checked-out connections against size + overflow (saturation).",
            ),
        ],
    )


def _messaging(job: str) -> Row:
    graphs: list[Graph] = []
    if job in PRODUCERS:
        graphs += [
            Graph(
                "Outbox lag",
                [q(f"max({selector('outbox_lag_seconds', job)})", "oldest unpublished")],
                unit="s",
                description="Age of the oldest unpublished outbox row (0 when all are published).",
            ),
            Graph(
                "Outbox backlog",
                [q(f"max({selector('outbox_backlog', job)})", "unpublished rows")],
            ),
            Graph(
                "Events published by type",
                [q(sum_rate("outbox_published_total", job, by="event_type"), "{{event_type}}")],
                unit="ops",
            ),
        ]
    if job in CONSUMERS:
        graphs += [
            Graph(
                "Events consumed by outcome",
                [q(sum_rate("events_consumed_total", job, by="outcome"), "{{outcome}}")],
                unit="ops",
                description="processed, duplicate, retried, dead_lettered.",
            ),
            Graph(
                "Event handling p95 by type",
                [
                    q(
                        quantile(0.95, "event_handling_duration_seconds", job, by="event_type"),
                        "{{event_type}}",
                    )
                ],
                unit="s",
            ),
            Graph(
                "Consumer prefetch in use",
                [
                    q(f"max({selector('consumer_messages_in_flight', job)})", "in flight"),
                    q(f"max({selector('consumer_prefetch_limit', job)})", "prefetch limit"),
                ],
                description="Deliveries being handled against the prefetch limit (saturation).",
            ),
            Graph(
                "DLQ depth",
                [q(f"max({selector('dlq_depth', job)})", f"{job}.dlq")],
                description=f"Messages waiting in {job}.dlq: `python -m {job} dlq list`.",
            ),
        ]
    return Row("Messaging", graphs)
