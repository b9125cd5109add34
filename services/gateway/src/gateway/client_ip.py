"""Who the client is, by address: the key of anonymous rate limits and the `X-Forwarded-For` the
upstreams get.

The socket peer is the client unless it is a trusted proxy (`TRUSTED_PROXIES`). Then the address
comes from `X-Forwarded-For`, read from the right: each proxy appends the address it received the
request from, so the entries a trusted proxy added are skipped and the first untrusted one is the
client. Anything left of it was written by the client and could be anything. When every entry is a
trusted proxy, the left-most is the client. With one proxy that replaces the header (the usual
ingress setup) this is simply its single entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

from gateway.rates import IPNetwork

UNKNOWN = "unknown"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in proxies)


def _forwarded_for(scope: Scope) -> list[str]:
    values = [v.decode("latin-1") for n, v in scope["headers"] if n.lower() == b"x-forwarded-for"]
    return [entry.strip() for entry in ",".join(values).split(",") if entry.strip()]


def client_ip(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str:
    client = scope.get("client")
    peer = _parse(str(client[0])) if client else None
    if peer is None:
        return str(client[0]) if client else UNKNOWN
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    address = peer
    for entry in reversed(_forwarded_for(scope)):
        hop = _parse(entry)
        if hop is None:
            break  # garbage in the chain: trust nothing left of it
        address = hop
        if not _trusted(hop, trusted_proxies):
            break
    return str(address)
