"""`Cache-Control` as the gateway's shared cache reads it (RFC 9111 §5.2, RFC 5861).

A response may be stored only when the upstream says a shared cache may keep it for a while:
a 200 with an explicit lifetime (`s-maxage`, preferred, else `max-age`), and neither `private`,
`no-store` nor `no-cache` (which would need a round trip each time anyway), no `Set-Cookie` (a
cookie set for one client must never reach another) and no `Vary: *`. Past its lifetime it may
still be served for `stale-while-revalidate` seconds while one request fetches a fresh copy,
unless `must-revalidate` or `proxy-revalidate` forbid serving it stale.

A request says `no-cache` (or `max-age=0`, or `Pragma: no-cache`) to be answered by the
upstream, and `no-store` for its answer not to be stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.forwarding import RawHeaders

Directives = dict[str, str | None]


def header_values(headers: RawHeaders, name: bytes) -> list[str]:
    """Every value of the header `name` (lower case), in order."""
    return [value.decode("latin-1") for key, value in headers if key.lower() == name]


def parse_directives(values: Iterable[str]) -> Directives:
    """`{directive: argument or None}`, names lower-cased, quotes removed; the first of a
    repeated directive wins."""
    directives: Directives = {}
    for value in values:
        for part in value.split(","):
            name, _, argument = part.strip().partition("=")
            name = name.strip().lower()
            if name and name not in directives:
                directives[name] = argument.strip().strip('"') if argument else None
    return directives


def delta_seconds(directives: Directives, name: str) -> int | None:
    """The directive's argument as whole seconds; None when absent or not a number."""
    argument = directives.get(name)
    return int(argument) if argument is not None and argument.isdigit() else None


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a stored response is fresh, and how long after that it may be served stale
    while it is revalidated."""

    lifetime: int
    stale_while_revalidate: int


def shared_freshness(status: int, headers: RawHeaders) -> Freshness | None:
    """Freshness of an upstream answer in a shared cache; None when it may not be stored."""
    if status != 200 or header_values(headers, b"set-cookie"):
        return None
    if any(v.strip() == "*" for v in ",".join(header_values(headers, b"vary")).split(",")):
        return None
    directives = parse_directives(header_values(headers, b"cache-control"))
    if {"private", "no-store", "no-cache"} & directives.keys():
        return None
    lifetime = delta_seconds(directives, "s-maxage")
    if lifetime is None:
        lifetime = delta_seconds(directives, "max-age")
    if not lifetime:
        return None
    stale = delta_seconds(directives, "stale-while-revalidate") or 0
    if {"must-revalidate", "proxy-revalidate"} & directives.keys():
        stale = 0
    return Freshness(lifetime=lifetime, stale_while_revalidate=stale)


@dataclass(frozen=True, slots=True)
class RequestDirectives:
    """What a client's request asks of the cache."""

    revalidate: bool  # answer from the upstream, not from a stored copy
    no_store: bool  # do not store the answer

    @classmethod
    def of(cls, headers: RawHeaders) -> RequestDirectives:
        values = header_values(headers, b"cache-control")
        directives = parse_directives(values)
        pragma = not values and "no-cache" in parse_directives(header_values(headers, b"pragma"))
        return cls(
            revalidate=pragma or "no-cache" in directives or directives.get("max-age") == "0",
            no_store="no-store" in directives,
        )


def vary_names(headers: RawHeaders) -> tuple[str, ...]:
    """The request header names a response varies on, lower-cased, sorted, without repeats."""
    names = ",".join(header_values(headers, b"vary")).split(",")
    return tuple(sorted({name.strip().lower() for name in names if name.strip()}))
