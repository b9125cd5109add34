"""Hostile or clumsy input gets a clear 4xx problem through the gateway, never a 500."""

from __future__ import annotations

import httpx
import pytest
from e2e_support import admin_token, bearer

from fleetctl.testing import assert_problem

pytestmark = pytest.mark.e2e


async def test_malformed_json_is_400(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post(
        "/v1/auth/register",
        content=b'{"email": "a@b.c", "password": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_wrong_types_and_unknown_fields_are_422(gateway: httpx.AsyncClient) -> None:
    wrong = await gateway.post("/v1/auth/register", json={"email": 42, "password": ["x"]})
    assert_problem(wrong, 422)
    token = await admin_token(gateway)
    extra = await gateway.post(
        "/v1/products",
        headers=bearer(token),
        json={"sku": "EXTRA-1", "name": "x", "price_cents": 1, "stock": 1, "is_admin": True},
    )
    assert_problem(extra, 422)
    negative = await gateway.post(
        "/v1/products",
        headers=bearer(token),
        json={"sku": "NEG-1", "name": "x", "price_cents": -5, "stock": 1},
    )
    assert_problem(negative, 422)


async def test_body_over_one_mebibyte_is_413_at_the_gateway(gateway: httpx.AsyncClient) -> None:
    # A connection of its own: the 413 closes it, which must not race a pooled keep-alive one.
    async with httpx.AsyncClient(base_url=str(gateway.base_url), timeout=10) as client:
        response = await client.post(
            "/v1/auth/register",
            content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 413)


async def test_sql_looking_strings_are_just_data(gateway: httpx.AsyncClient) -> None:
    hostile = "x'); DROP TABLE auth.users; --"
    login = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": hostile, "password": hostile},
    )
    assert_problem(login, 401)
    product = await gateway.get("/v1/products/1' OR '1'='1")
    assert_problem(product, 422)
    listing = await gateway.get("/v1/products", params={"cursor": hostile})
    assert_problem(listing, 422)
    assert (await gateway.get("/v1/products")).status_code == 200


async def test_huge_page_size_is_capped(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/products", params={"limit": 10_000_000})
    assert response.status_code == 200
    assert len(response.json()["items"]) <= 100


async def test_unknown_route_and_unsupported_grant_are_problems(
    gateway: httpx.AsyncClient,
) -> None:
    assert_problem(await gateway.get("/v1/nothing-here"), 404)
    grant = await gateway.post("/v1/auth/token", data={"grant_type": "client_credentials"})
    assert_problem(grant, 400)
