"""Browsing and administering the catalog through the gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest
from e2e_support import admin_token, bearer, register_and_login

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


async def test_seeded_catalog_pages_through_without_gaps(gateway: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        page = await gateway.get("/v1/products", params=params)
        assert page.status_code == 200
        body = page.json()
        seen += [p["id"] for p in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) >= 50
    assert len(seen) == len(set(seen))
    product = (await gateway.get(f"/v1/products/{seen[0]}")).json()
    assert set(product) >= {"id", "sku", "name", "description", "price_cents", "currency", "stock"}


async def test_admin_creates_and_updates_product_and_readers_see_it(
    gateway: httpx.AsyncClient,
) -> None:
    token = await admin_token(gateway)
    sku = f"E2E-{uuid.uuid4().hex[:8]}".upper()
    created = await gateway.post(
        "/v1/products",
        headers=bearer(token),
        json={
            "sku": sku,
            "name": "Trail shoe",
            "description": "Light",
            "price_cents": 8999,
            "currency": "EUR",
            "stock": 5,
        },
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    assert (await gateway.get(f"/v1/products/{product_id}")).json()["price_cents"] == 8999
    patched = await gateway.patch(
        f"/v1/products/{product_id}", headers=bearer(token), json={"price_cents": 7999}
    )
    assert patched.status_code == 200
    # The cached copy was invalidated by the write.
    assert (await gateway.get(f"/v1/products/{product_id}")).json()["price_cents"] == 7999


async def test_non_admin_cannot_create_products(gateway: httpx.AsyncClient) -> None:
    session = await register_and_login(gateway)
    response = await gateway.post(
        "/v1/products",
        headers=bearer(session["access_token"]),
        json={"sku": "NOPE-1", "name": "x", "price_cents": 1, "stock": 1},
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    anonymous = await gateway.post(
        "/v1/products", json={"sku": "NOPE-2", "name": "x", "price_cents": 1, "stock": 1}
    )
    assert anonymous.status_code == 401


async def test_unknown_product_is_404_problem_and_malformed_id_422(
    gateway: httpx.AsyncClient,
) -> None:
    missing = await gateway.get(f"/v1/products/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["request_id"] == missing.headers["x-request-id"]
    malformed = await gateway.get("/v1/products/not-a-uuid")
    assert malformed.status_code == 422
