"""Prometheus metrics of the gateway's calls to its upstreams."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from chassis.metrics import LATENCY_BUCKETS

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests",
    "Requests the gateway sent upstream, by upstream and outcome "
    "(ok, upstream_error for a 5xx answer, unavailable, timeout, bad_gateway).",
    ["upstream", "outcome"],
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request upstream to having its whole answer (or failing), by upstream.",
    ["upstream"],
    buckets=LATENCY_BUCKETS,
)
