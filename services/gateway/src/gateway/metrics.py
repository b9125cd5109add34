"""Prometheus metrics of the gateway: its calls to upstreams, their circuits, the rate limits and
the shared response cache."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from chassis.metrics import LATENCY_BUCKETS, initialise_labels

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests",
    "Requests the gateway sent upstream (each attempt), by upstream and outcome "
    "(ok, upstream_error for a 5xx answer, unavailable, timeout, bad_gateway).",
    ["upstream", "outcome"],
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from sending a request upstream to having its whole answer (or failing), by upstream.",
    ["upstream"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries",
    "Retries of idempotent requests after a transient upstream failure, by upstream.",
    ["upstream"],
)
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state",
    "State of each upstream's circuit breaker: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
)
THROTTLED = Counter(
    "gateway_upstream_throttled",
    "Requests the gateway refused itself (503) because their upstream was shedding load.",
    ["upstream"],
)
CIRCUIT_REJECTED = Counter(
    "gateway_circuit_rejected",
    "Requests answered 503 without calling the upstream because its circuit was open.",
    ["upstream"],
)
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Requests refused with 429, by the policy whose limit they exceeded (default, login).",
    ["policy"],
)
RATE_LIMIT_ERRORS = Counter(
    "gateway_rate_limit_errors",
    "Rate-limit checks that could not reach Redis; those requests passed unlimited.",
)
CACHE_REQUESTS = Counter(
    "gateway_cache_requests",
    "GETs of the cached routes by how the shared cache answered: hit (a fresh copy), stale (a "
    "copy past its lifetime, while one request revalidates it), miss (fetched upstream, stored "
    "if it may be), coalesced (answered by a concurrent miss's fetch), bypass (authenticated, "
    "asked for no-cache, or a range or precondition), unavailable (Redis failed: fetched "
    "upstream).",
    ["result"],
)
CACHE_ERRORS = Counter(
    "gateway_cache_errors",
    "Shared-cache operations Redis failed (lookup, store, purge); the gateway went on without "
    "them (a failed purge leaves a copy until its lifetime ends).",
    ["operation"],
)
BFF_DEGRADED = Counter(
    "gateway_bff_degraded",
    "Parts of aggregated (BFF) responses served empty because their upstream failed.",
    ["part"],
)


def initialise_metrics(
    *,
    upstreams: Sequence[str],
    outcomes: Iterable[str],
    policies: Iterable[str],
    bff_parts: Iterable[str],
    cache_results: Iterable[str],
    cache_operations: Iterable[str],
) -> None:
    """Export every series whose labels are known at start at 0 (`gateway_circuit_state` is set
    when each circuit is created)."""
    initialise_labels(UPSTREAM_REQUESTS, upstream=upstreams, outcome=outcomes)
    initialise_labels(UPSTREAM_DURATION, upstream=upstreams)
    for counter in (UPSTREAM_RETRIES, THROTTLED, CIRCUIT_REJECTED):
        initialise_labels(counter, upstream=upstreams)
    initialise_labels(RATE_LIMITED, policy=policies)
    initialise_labels(BFF_DEGRADED, part=bff_parts)
    initialise_labels(CACHE_REQUESTS, result=cache_results)
    initialise_labels(CACHE_ERRORS, operation=cache_operations)
