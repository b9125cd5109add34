"""A product read as a client of the public API meets it: from catalog directly (served from
catalog's own cache), through the gateway past its shared cache (`Cache-Control: no-cache,
no-store`: the rate-limit check per client address, routing, the upstream call, spans, metrics
and logs on both hops), and through the gateway from its shared cache (a hit: no upstream call)."""

from __future__ import annotations

import httpx

from bench.common import HttpLoad, wrk
from bench.fleet import BenchFleet

# Forwarded as if the gateway had no cache: not answered from it, not stored in it.
PAST_THE_CACHE = {"Cache-Control": "no-cache, no-store"}
DIRECT, FORWARDED, CACHE_HIT = "catalog direct", "through gateway", "gateway cache hit"


def cached_product_reads(
    fleet: BenchFleet, *, seconds: float, connections: tuple[int, ...]
) -> list[HttpLoad]:
    path = f"/v1/products/{fleet.products[0]}"
    httpx.get(f"{fleet.gateway}{path}", timeout=5).raise_for_status()  # cached from here on
    results = []
    for label, base, headers in (
        (DIRECT, fleet.url("catalog"), {}),
        (FORWARDED, fleet.gateway, PAST_THE_CACHE),
        (CACHE_HIT, fleet.gateway, {}),
    ):
        wrk("warm-up", f"{base}{path}", connections=4, seconds=1, headers=headers)
        results += [
            wrk(label, f"{base}{path}", connections=c, seconds=seconds, headers=headers)
            for c in connections
        ]
    return results
