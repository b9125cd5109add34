"""Orders reads products at `/internal/v1/products/{id}` as itself; nobody else may."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from fleetctl.testing import assert_problem
from fleetctl.tokens import TestTokenIssuer


def _as(token_issuer: TestTokenIssuer, caller: str, audience: str = "catalog") -> dict[str, str]:
    token = token_issuer.issue_service(caller=caller, audience=audience)
    return {"Fleet-Service-Authorization": f"Bearer {token}"}


async def test_orders_reads_a_product_with_its_service_token(
    client: httpx.AsyncClient,
    create_product: Callable[..., Any],
    token_issuer: TestTokenIssuer,
) -> None:
    product = await create_product(price_cents=1999)

    response = await client.get(
        f"/internal/v1/products/{product['id']}", headers=_as(token_issuer, "orders")
    )

    assert response.status_code == 200, response.text
    assert response.json()["price_cents"] == 1999


async def test_the_internal_route_refuses_other_callers_and_tokens_not_for_catalog(
    client: httpx.AsyncClient,
    create_product: Callable[..., Any],
    token_issuer: TestTokenIssuer,
    user_headers: dict[str, str],
) -> None:
    path = f"/internal/v1/products/{(await create_product())['id']}"

    assert_problem(await client.get(path), 401, "invalid-service-token")
    assert_problem(await client.get(path, headers=user_headers), 401, "invalid-service-token")
    wrong_audience = _as(token_issuer, "orders", audience="orders")
    assert_problem(await client.get(path, headers=wrong_audience), 401, "invalid-service-token")
    assert_problem(
        await client.get(path, headers=_as(token_issuer, "gateway")), 403, "caller-not-allowed"
    )


async def test_the_internal_route_is_not_in_the_public_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal")]
