"""Prometheus RED metrics shared by every service, labelled by route template (never raw paths),
and `initialise_labels`, which every labelled metric whose label values are known at start goes
through."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

# Buckets in seconds, dense where interactive latency objectives live (50-500 ms).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served right now.")
HTTP_SHED = Counter(
    "http_requests_shed_total",
    "Requests refused at once (503) because MAX_IN_FLIGHT_REQUESTS were being served already.",
)
# Saturation of the database pool (set by chassis.db.engine_for, read at scrape time).
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out_connections", "Database connections in use (checked out of the pool)."
)
DB_POOL_MAX = Gauge(
    "db_pool_max_connections", "Most connections the pool will open (size + overflow)."
)
DEPENDENCY_UP = Gauge(
    "dependency_up", "1 when the last readiness check of a dependency passed.", ["dependency"]
)


def initialise_labels(metric: Counter | Gauge | Histogram, **values: Iterable[str]) -> None:
    """Export `metric` at 0 for every combination of the label values known at start (one
    iterable per label name), as Prometheus' instrumentation advice has it.

    A labelled series exists only once its labels were used: until its first event a dashboard
    shows "no data" instead of 0, an alert on it cannot fire, and `rate()` misses the first
    increment. Label values known only from traffic (paths, status codes) stay lazy.
    """
    names = list(values)
    for combination in itertools.product(*(tuple(values[name]) for name in names)):
        metric.labels(**dict(zip(names, combination, strict=True)))


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
