"""Keyset pagination of `GET /v1/products`: complete, stable, capped and strict about cursors."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fleetctl.testing import assert_problem


async def _walk(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/v1/products", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit


async def test_walking_all_pages_yields_every_product_once_in_creation_order(
    client: httpx.AsyncClient, create_product: Callable[..., Any]
) -> None:
    created = [await create_product(name=f"Paged {n}") for n in range(7)]

    walked = await _walk(client, limit=3)

    ids = [item["id"] for item in walked]
    assert len(ids) == len(set(ids))
    mine = [item for item in walked if item["id"] in {p["id"] for p in created}]
    assert mine == created
    # Nothing was created after the last of ours, so it ends the walk.
    assert walked[-1] == created[-1]


async def test_default_page_size_is_20(
    client: httpx.AsyncClient, create_product: Callable[..., Any]
) -> None:
    for _ in range(21):
        await create_product()

    page = (await client.get("/v1/products")).json()

    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


async def test_limit_above_the_maximum_is_capped_not_refused(
    make_settings: Callable[..., Any],
    run_app: Callable[..., Any],
    create_product: Callable[..., Any],
) -> None:
    for _ in range(4):
        await create_product()

    async with run_app(make_settings(products_max_page_size=3)) as small:
        capped = await small.get("/v1/products", params={"limit": 100_000})

    assert capped.status_code == 200
    assert len(capped.json()["items"]) == 3
    assert capped.json()["next_cursor"] is not None


async def test_limit_100000_is_served_with_the_default_maximum(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/products", params={"limit": 100_000})

    assert response.status_code == 200
    assert len(response.json()["items"]) <= 100


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5", ""])
async def test_limit_below_one_or_not_an_integer_is_422(
    client: httpx.AsyncClient, limit: str
) -> None:
    assert_problem(await client.get("/v1/products", params={"limit": limit}), 422)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "",
        "é",
        "A" * 500,
        _b64("hello"),
        _b64("2026-01-01T00:00:00+00:00|not-a-uuid"),
        _b64("yesterday|6f1c0c52-3b9a-4f57-9f55-0f6a6b1e4b7e"),
        # A key without a time zone could not be compared with timestamptz reliably.
        _b64("2026-01-01T00:00:00|6f1c0c52-3b9a-4f57-9f55-0f6a6b1e4b7e"),
        _b64("2026-01-01T00:00:00+00:00|6f1c0c52' OR '1'='1"),
    ],
)
async def test_malformed_cursor_is_a_422_problem(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/v1/products", params={"cursor": cursor})

    assert_problem(response, 422, "invalid-cursor")
