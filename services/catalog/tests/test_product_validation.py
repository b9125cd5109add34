"""Bad product input is refused with a 422 problem, never stored and never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fleetctl.testing import assert_problem

Body = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    "overrides",
    [
        {"sku": ""},
        {"sku": "A" * 65},
        {"sku": "HAS SPACE"},
        {"sku": "UNDER_SCORE"},
        {"sku": "X-1' OR '1'='1"},
        {"sku": "ROBERT'); DROP TABLE catalog.products;--"},
        {"name": ""},
        {"name": "   "},
        {"name": "N" * 201},
        {"name": "nul\u0000byte"},
        {"name": "lone \ud800 surrogate"},
        {"description": "D" * 2001},
        {"description": "bell\u0007"},
        {"price_cents": -1},
        {"price_cents": 1_000_000_001},
        {"price_cents": 10.5},
        {"price_cents": "100"},
        {"price_cents": True},
        {"price_cents": None},
        {"currency": "eur"},
        {"currency": "EURO"},
        {"stock": -1},
        {"stock": 10**12},
        {"stock": 2.0},
        {"colour": "red"},
        {"id": "00000000-0000-0000-0000-000000000001"},
    ],
)
async def test_invalid_or_unknown_fields_on_create_are_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    product_body: Body,
    overrides: dict[str, Any],
) -> None:
    # ASCII-escaped JSON, so a lone surrogate travels as `\\ud800` like a hostile client sends it.
    response = await client.post(
        "/v1/products",
        content=json.dumps(product_body(**overrides)).encode(),
        headers={**admin_headers, "content-type": "application/json"},
    )

    assert_problem(response, 422, "validation-error")


async def test_missing_required_fields_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post("/v1/products", json={"name": "x"}, headers=admin_headers)

    assert_problem(response, 422)
    missing = {tuple(err["loc"]) for err in response.json()["errors"]}
    assert {("body", "sku"), ("body", "price_cents")} <= missing


@pytest.mark.parametrize(
    "patch",
    [
        {"sku": "NEW-SKU"},
        {"id": "00000000-0000-0000-0000-000000000001"},
        {"colour": "red"},
        {"name": None},
        {"stock": None},
        {"price_cents": -5},
        {"currency": "usd"},
    ],
)
async def test_invalid_or_unknown_fields_on_patch_are_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    create_product: Callable[..., Any],
    patch: dict[str, Any],
) -> None:
    product = await create_product()

    response = await client.patch(
        f"/v1/products/{product['id']}", json=patch, headers=admin_headers
    )

    assert_problem(response, 422)
    assert (await client.get(f"/v1/products/{product['id']}")).json() == product


async def test_malformed_json_body_is_a_problem(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/products",
        content=b'{"sku": ',
        headers={**admin_headers, "content-type": "application/json"},
    )

    assert_problem(response, 400)


@pytest.mark.parametrize(
    "text",
    [
        "Robert'); DROP TABLE catalog.products;--",
        "' OR '1'='1",
        "1; SELECT pg_sleep(10)",
        '"; DELETE FROM products WHERE "1"="1',
        "%_\\ $1 :name",
    ],
)
async def test_sql_looking_text_is_stored_literally(
    client: httpx.AsyncClient, create_product: Callable[..., Any], text: str
) -> None:
    created = await create_product(name=text, description=text)

    fetched = await client.get(f"/v1/products/{created['id']}")

    assert fetched.status_code == 200
    assert fetched.json()["name"] == text
    assert fetched.json()["description"] == text
    assert (await client.get("/v1/products")).status_code == 200
