"""Retry delays: exponential backoff with full jitter, and a server's `Retry-After`.

Full jitter (a uniformly random delay between zero and the exponential bound) spreads the retries
of many failed sends over time, so a recovering receiver is not hit by all of them at once.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A `Retry-After` beyond this is not believed (a misconfigured server must not park a delivery
# for months); the attempt budget still ends the delivery in the end.
MAX_RETRY_AFTER_SECONDS = 86_400.0


def full_jitter(attempt: int, *, base: float, cap: float) -> float:
    """Delay before the retry that follows attempt number `attempt` (1 for the first attempt):
    uniform in [0, min(cap, base * 2**(attempt - 1))]."""
    exponent = min(max(attempt - 1, 0), 62)
    bound = min(cap, base * 2**exponent)
    return random.uniform(0, bound)  # noqa: S311 - spreading retries, not a secret


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date); None when
    it is absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER_SECONDS)
