"""Creating, reading and updating products through the HTTP API, with admin-only writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetctl.testing import assert_problem
from fleetctl.tokens import TestTokenIssuer

Body = Callable[..., dict[str, Any]]


async def test_admin_creates_product_with_location_defaults_and_upper_case_sku(
    client: httpx.AsyncClient, admin_headers: dict[str, str], product_body: Body
) -> None:
    body = product_body()
    del body["description"]
    body["sku"] = body["sku"].lower()

    response = await client.post("/v1/products", json=body, headers=admin_headers)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "sku": body["sku"].upper(),
        "name": body["name"],
        "description": "",
        "price_cents": body["price_cents"],
        "currency": "EUR",
        "stock": 0,
    }
    assert response.headers["location"] == f"/v1/products/{created['id']}"
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_non_admin_cannot_create_or_update(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    product_body: Body,
    create_product: Callable[..., Any],
) -> None:
    existing = await create_product()

    created = await client.post("/v1/products", json=product_body(), headers=user_headers)
    updated = await client.patch(
        f"/v1/products/{existing['id']}", json={"stock": 1}, headers=user_headers
    )

    assert_problem(created, 403)
    assert_problem(updated, 403)
    assert (await client.get(f"/v1/products/{existing['id']}")).json()["stock"] == 0


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic YWRtaW46YWRtaW4="])
async def test_writes_without_a_valid_token_are_401(
    client: httpx.AsyncClient, product_body: Body, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    created = await client.post("/v1/products", json=product_body(), headers=headers)
    updated = await client.patch(f"/v1/products/{uuid.uuid4()}", json={}, headers=headers)

    assert_problem(created, 401)
    assert_problem(updated, 401)
    assert created.headers["www-authenticate"].startswith("Bearer")


async def test_admin_token_signed_with_an_unknown_key_is_401(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, product_body: Body
) -> None:
    forged = token_issuer.issue(roles=["admin"], key=Ed25519PrivateKey.generate())

    response = await client.post(
        "/v1/products", json=product_body(), headers={"Authorization": f"Bearer {forged}"}
    )

    assert_problem(response, 401)


async def test_duplicate_sku_is_409_whatever_its_case(
    client: httpx.AsyncClient, admin_headers: dict[str, str], product_body: Body
) -> None:
    first = product_body()
    assert (await client.post("/v1/products", json=first, headers=admin_headers)).status_code == 201

    again = await client.post(
        "/v1/products", json=product_body(sku=first["sku"].lower()), headers=admin_headers
    )

    assert_problem(again, 409, "duplicate-sku")


async def test_unknown_product_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    unknown = uuid.uuid4()

    assert_problem(await client.get(f"/v1/products/{unknown}"), 404, "product-not-found")
    patched = await client.patch(
        f"/v1/products/{unknown}", json={"stock": 3}, headers=admin_headers
    )
    assert_problem(patched, 404, "product-not-found")


@pytest.mark.parametrize("product_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"])
async def test_malformed_product_id_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], product_id: str
) -> None:
    assert_problem(await client.get(f"/v1/products/{product_id}"), 422)
    patched = await client.patch(
        f"/v1/products/{product_id}", json={"stock": 3}, headers=admin_headers
    )
    assert_problem(patched, 422)


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, admin_headers: dict[str, str], create_product: Callable[..., Any]
) -> None:
    product = await create_product(stock=5)

    response = await client.patch(
        f"/v1/products/{product['id']}",
        json={"price_cents": 4200, "currency": "USD", "stock": 0},
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {**product, "price_cents": 4200, "currency": "USD", "stock": 0}
    renamed = await client.patch(
        f"/v1/products/{product['id']}",
        json={"name": "Renamed kettle", "description": "Line one\nline two"},
        headers=admin_headers,
    )
    assert renamed.json() == {
        **product,
        "price_cents": 4200,
        "currency": "USD",
        "stock": 0,
        "name": "Renamed kettle",
        "description": "Line one\nline two",
    }


async def test_empty_patch_returns_the_product_unchanged(
    client: httpx.AsyncClient, admin_headers: dict[str, str], create_product: Callable[..., Any]
) -> None:
    product = await create_product()

    response = await client.patch(f"/v1/products/{product['id']}", json={}, headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == product
