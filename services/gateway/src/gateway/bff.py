"""Backend for frontend: the app's home screen in one call, assembled from several upstreams.

Parts are fetched in parallel, each through its upstream's circuit breaker and bounded by the part
timeout. A part that fails, is late or whose circuit is open becomes an empty list and its name is
listed in `degraded`: the screen renders what it can instead of the whole call failing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chassis.logging import get_logger
from chassis.problems import DomainError
from gateway.forwarding import RawHeaders
from gateway.metrics import BFF_DEGRADED
from gateway.upstream_calls import call
from gateway.upstreams import Upstream

log = get_logger(__name__)

FEATURED_PRODUCTS = 8
RECENT_ORDERS = 5


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    upstream: str
    target: str
    as_caller: bool  # sends the caller's Authorization


HOME_PARTS = (
    Part("featured", "catalog", f"/v1/products?limit={FEATURED_PRODUCTS}", as_caller=False),
    Part("recent_orders", "orders", f"/v1/orders?limit={RECENT_ORDERS}", as_caller=True),
)


class _UnusableError(Exception):
    """The part's answer is not a page of items."""


def _items(status: int, body: bytes) -> list[Any]:
    if status != 200:
        raise _UnusableError(f"status {status}")
    try:
        document = json.loads(body)
    except ValueError:
        raise _UnusableError("not JSON") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise _UnusableError("no `items` list")
    return items


async def _fetch(
    part: Part, upstream: Upstream, headers: RawHeaders, timeout: float
) -> list[Any] | None:
    """The part's items; None (logged and counted) when it cannot be had in time."""
    try:
        answer = await call(
            upstream=upstream,
            method="GET",
            target=part.target,
            headers=headers,
            body=b"",
            deadline_seconds=timeout,
        )
        return _items(answer.status, answer.body)
    except (DomainError, _UnusableError) as exc:
        reason = exc.code if isinstance(exc, DomainError) else str(exc)
        log.warning("bff_part_degraded", part=part.name, upstream=upstream.name, reason=reason)
    except Exception:
        # Whatever goes wrong in one part, the screen still gets the others.
        log.exception("bff_part_failed", part=part.name, upstream=upstream.name)
    BFF_DEGRADED.labels(part.name).inc()
    return None


async def home(
    *,
    upstreams: Mapping[str, Upstream],
    authorization: str,
    forwarded: RawHeaders,
    part_timeout: float,
) -> dict[str, list[Any]]:
    """`{featured, recent_orders, degraded}`; `forwarded` are the X-Forwarded-* headers to send."""
    base: RawHeaders = [(b"accept", b"application/json"), (b"accept-encoding", b"identity")]
    base += forwarded
    caller = [*base, (b"authorization", authorization.encode("latin-1"))]
    results = await asyncio.gather(
        *(
            _fetch(part, upstreams[part.upstream], caller if part.as_caller else base, part_timeout)
            for part in HOME_PARTS
        )
    )
    parts = list(zip(HOME_PARTS, results, strict=True))
    screen = {part.name: items or [] for part, items in parts}
    screen["degraded"] = [part.name for part, items in parts if items is None]
    return screen
