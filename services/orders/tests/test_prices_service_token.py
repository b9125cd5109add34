"""Orders reads prices from catalog's internal route as itself: a service token for catalog."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
from orders_catalog_stub import CatalogStub

from fleetctl.tokens import TestTokenIssuer


async def test_price_lookups_carry_one_cached_orders_token_for_catalog(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, token_issuer: TestTokenIssuer
) -> None:
    kettle, mug = catalog.add(), catalog.add()
    sent_before = len(catalog.service_tokens)

    for product in (kettle, mug, kettle):
        response = await client.post(
            "/v1/orders",
            json={"items": [{"product_id": product, "quantity": 1}]},
            headers=customer.with_key(),
        )
        assert response.status_code == 202, response.text

    tokens = catalog.service_tokens[sent_before:]
    assert len(tokens) == 3
    assert len(set(tokens)) == 1  # one token for every lookup, fetched once
    assert token_issuer.token_requests == 1
    claims = jwt.decode(tokens[0], options={"verify_signature": False})
    assert (claims["sub"], claims["aud"], claims["typ"]) == ("orders", "catalog", "service")
