"""Product reads are public and cacheable: `Cache-Control` from the settings, a strong ETag that
changes the moment the product does, 304 to an `If-None-Match` that holds it; writes are never
stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from catalog.settings import CatalogSettings

PUBLIC = "public, max-age=5, s-maxage=30, stale-while-revalidate=30"


async def test_product_and_list_reads_are_public_with_a_strong_etag(
    client: httpx.AsyncClient, create_product: Callable[..., Any]
) -> None:
    product = await create_product()
    for path in (f"/v1/products/{product['id']}", "/v1/products?limit=5"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"] == PUBLIC
        etag = response.headers["etag"]
        assert etag.startswith('"')  # strong: no W/
        assert etag.endswith('"')
        assert (await client.get(path)).headers["etag"] == etag  # the same bytes, the same tag


async def test_if_none_match_holding_the_etag_is_304_without_a_body(
    client: httpx.AsyncClient, create_product: Callable[..., Any]
) -> None:
    product = await create_product()
    path = f"/v1/products/{product['id']}"
    etag = (await client.get(path)).headers["etag"]

    unchanged = await client.get(path, headers={"If-None-Match": f'"stale", {etag}'})
    any_tag = await client.get(path, headers={"If-None-Match": "*"})
    other = await client.get(path, headers={"If-None-Match": '"stale"'})

    assert unchanged.status_code == any_tag.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["cache-control"] == PUBLIC
    assert other.status_code == 200
    assert other.json()["id"] == product["id"]


async def test_an_admin_update_changes_the_etag_at_once(
    client: httpx.AsyncClient, create_product: Callable[..., Any], admin_headers: dict[str, str]
) -> None:
    product = await create_product()
    path = f"/v1/products/{product['id']}"
    before = (await client.get(path)).headers["etag"]
    listed_before = (await client.get("/v1/products?limit=100")).headers["etag"]

    updated = await client.patch(path, json={"price_cents": 1}, headers=admin_headers)
    after = await client.get(path, headers={"If-None-Match": before})

    assert updated.headers["cache-control"] == "no-store"
    assert after.status_code == 200
    assert after.json()["price_cents"] == 1
    assert after.headers["etag"] != before
    listed = await client.get("/v1/products?limit=100", headers={"If-None-Match": listed_before})
    assert listed.status_code == 200


async def test_lifetimes_come_from_the_settings(
    run_app: Callable[[CatalogSettings], Any],
    make_settings: Callable[..., CatalogSettings],
) -> None:
    settings = make_settings(
        products_max_age_seconds=0,
        products_shared_max_age_seconds=120,
        products_stale_while_revalidate_seconds=10,
    )
    async with run_app(settings) as client:
        response = await client.get("/v1/products")
    assert response.headers["cache-control"] == (
        "public, max-age=0, s-maxage=120, stale-while-revalidate=10"
    )
