"""Coarse caching at the edge over the real catalog: product reads stored at the gateway as
catalog's `Cache-Control` allows, answered 304 when the client holds the ETag, never shared with
authenticated callers, and purged by an admin's update through the gateway."""

from __future__ import annotations

import httpx
import pytest
from e2e_support import admin_token, bearer, create_product, register_and_login

from fleetctl.testing import eventually

pytestmark = pytest.mark.e2e

# Catalog's defaults (PRODUCTS_*): the gateway keeps a copy 30 s, then serves it 30 s stale.
SHARED_MAX_AGE = 30


async def test_product_reads_are_stored_at_the_gateway_and_answered_304(
    gateway: httpx.AsyncClient,
) -> None:
    path = f"/v1/products/{await create_product(gateway, stock=3)}"
    first = await gateway.get(path)
    second = await gateway.get(path)
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert second.headers["cache-status"].startswith("gateway; hit; ttl=")
    assert 0 <= int(second.headers["age"]) <= SHARED_MAX_AGE
    assert first.headers["cache-control"] == (
        f"public, max-age=5, s-maxage={SHARED_MAX_AGE}, stale-while-revalidate=30"
    )
    assert second.headers["etag"] == first.headers["etag"]
    assert second.json() == first.json()

    unchanged = await gateway.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]

    session = await register_and_login(gateway)
    mine = await gateway.get(path, headers=bearer(session["access_token"]))
    assert mine.status_code == 200
    assert mine.headers["cache-status"] == "gateway; fwd=bypass"
    # Catalog answers the same condition itself when the request passes the cache.
    passed = await gateway.get(
        path,
        headers={**bearer(session["access_token"]), "If-None-Match": first.headers["etag"]},
    )
    assert passed.status_code == 304


async def test_an_admin_update_through_the_gateway_purges_the_product_and_the_list(
    gateway: httpx.AsyncClient,
) -> None:
    product_id = await create_product(gateway, stock=3, price=1000)
    path = f"/v1/products/{product_id}"
    for read in (path, "/v1/products?limit=1"):

        async def hit(read: str = read) -> bool:
            return (await gateway.get(read)).headers["cache-status"].startswith("gateway; hit")

        # Stored once the list's purge by the creation has settled (CACHE_PURGE_SETTLE_SECONDS).
        await eventually(hit, timeout=10)

    updated = await gateway.patch(
        path, headers=bearer(await admin_token(gateway)), json={"price_cents": 1234}
    )
    assert updated.status_code == 200, updated.text

    async def new_price_read() -> bool:
        price: int = (await gateway.get(path)).json()["price_cents"]
        return price == 1234

    # Well within the 30 s the stored copy was still fresh for.
    await eventually(new_price_read, timeout=5)
    listed = await gateway.get("/v1/products?limit=1")  # another product: every page is purged
    assert not listed.headers["cache-status"].startswith("gateway; hit")
