"""PromQL fragments shared by the dashboards.

Every service exports its metrics per process without a service label; Prometheus attaches
`job` = the service name when it scrapes (one scrape job per service), so each selector names
its service with `job="<service>"`.
"""

from __future__ import annotations

from fleet_observability.promql import RATE_WINDOW

SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
# Services that write events to an outbox and relay them (chassis.messaging relay).
PRODUCERS = ("auth", "catalog", "orders")
# Services that consume events from their queue (chassis.messaging consumer, with a DLQ).
CONSUMERS = ("catalog", "orders", "worker")


def selector(metric: str, job: str, extra: str = "") -> str:
    """`metric{job="<job>",<extra>}`; `job` may be a regex alternation (`a|b`)."""
    op = "=~" if "|" in job else "="
    matchers = f'job{op}"{job}"' + (f",{extra}" if extra else "")
    return f"{metric}{{{matchers}}}"


def rate(metric: str, job: str, extra: str = "", *, window: str = RATE_WINDOW) -> str:
    return f"rate({selector(metric, job, extra)}[{window}])"


def sum_rate(
    metric: str, job: str, extra: str = "", by: str = "", *, window: str = RATE_WINDOW
) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({rate(metric, job, extra, window=window)})"


def quantile(
    q: float, histogram: str, job: str, by: str = "", extra: str = "", *, window: str = RATE_WINDOW
) -> str:
    """`histogram_quantile` over a histogram's buckets, optionally kept apart by labels. A rare
    event (an export) takes a `window` longer than `$__rate_interval`, which would mostly hold
    no observation at all."""
    labels = f"le, {by}" if by else "le"
    buckets = sum_rate(f"{histogram}_bucket", job, extra, labels, window=window)
    return f"histogram_quantile({q}, {buckets})"


def ratio(numerator: str, denominator: str) -> str:
    """`numerator / denominator`, where a numerator without series (a status never answered yet,
    so no `status="500"` series exists) counts as 0 wherever the denominator has data: the panel
    shows 0, not "no data", and stays empty only when the denominator is."""
    return f"({numerator} or {denominator} * 0) / {denominator}"


def any_of(jobs: tuple[str, ...]) -> str:
    return "|".join(jobs)
