"""A cached product read, as a client of the public API meets it: from catalog directly, and
through the gateway (token-less read: rate-limit check per client address, routing, the upstream
call, spans, metrics and logs on both hops)."""

from __future__ import annotations

import httpx

from bench.common import HttpLoad, wrk
from bench.fleet import BenchFleet


def cached_product_reads(
    fleet: BenchFleet, *, seconds: float, connections: tuple[int, ...]
) -> list[HttpLoad]:
    path = f"/v1/products/{fleet.products[0]}"
    httpx.get(f"{fleet.gateway}{path}", timeout=5).raise_for_status()  # cached from here on
    results = []
    for label, base in (
        ("catalog direct", fleet.url("catalog")),
        ("through gateway", fleet.gateway),
    ):
        wrk("warm-up", f"{base}{path}", connections=4, seconds=1)
        results += [
            wrk(label, f"{base}{path}", connections=c, seconds=seconds) for c in connections
        ]
    return results
