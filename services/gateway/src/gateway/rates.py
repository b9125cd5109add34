"""Rate-limit and proxy-trust values as they are written in the environment.

`RATE_LIMIT_*` is `<n>/<second|minute|hour>` or `off`; `TRUSTED_PROXIES` is a comma-separated list
of CIDR blocks. Both are parsed when the settings load, so a typo stops the gateway from starting
instead of silently disabling a limit.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PERIODS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` requests per `period_seconds`, with bursts up to `limit`."""

    limit: int
    period_seconds: int

    def __str__(self) -> str:
        unit = next(name for name, seconds in PERIODS.items() if seconds == self.period_seconds)
        return f"{self.limit}/{unit}"


def parse_rate(value: Any) -> Rate | None:
    """`Rate` for `<n>/<second|minute|hour>`, None for `off`; ValueError for anything else."""
    if value is None or isinstance(value, Rate):
        return value
    if not isinstance(value, str):
        msg = "a rate limit is `<n>/<second|minute|hour>` or `off`"
        raise ValueError(msg)
    if value.strip().lower() == "off":
        return None
    match = _RATE.match(value)
    if not match or int(match.group(1)) < 1:
        msg = f"invalid rate limit {value!r}: expected `<n>/<second|minute|hour>` (n >= 1) or `off`"
        raise ValueError(msg)
    return Rate(limit=int(match.group(1)), period_seconds=PERIODS[match.group(2).lower()])


def parse_networks(value: Any) -> tuple[IPNetwork, ...]:
    """CIDR blocks from a comma-separated string (or a sequence); host bits must be zero."""
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list | tuple):
        msg = "TRUSTED_PROXIES is a comma-separated list of CIDR blocks"
        raise ValueError(msg)
    return tuple(
        item if isinstance(item, IPNetwork) else ipaddress.ip_network(str(item), strict=True)
        for item in value
    )
