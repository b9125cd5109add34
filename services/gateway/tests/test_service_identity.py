"""Every forwarded request carries the gateway's service token for its upstream, beside the
user's own `Authorization`."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import jwt

from fleetctl.tokens import TestTokenIssuer


async def test_forwarded_requests_carry_the_gateways_token_for_each_upstream_and_the_users_own(
    gateway: httpx.AsyncClient,
    bearer: Callable[..., dict[str, str]],
    token_issuer: TestTokenIssuer,
) -> None:
    user = bearer(subject="user-1")
    for path, upstream in (("/v1/products", "catalog"), ("/v1/orders", "orders")):
        for _ in range(2):
            response = await gateway.get(path, headers=user)
            assert response.status_code == 200, response.text
            headers = response.json()["headers"]
            assert headers["authorization"] == user["Authorization"]
            scheme, _, token = headers["fleet-service-authorization"].partition(" ")
            assert scheme == "Bearer"
            claims = jwt.decode(token, options={"verify_signature": False})
            assert (claims["sub"], claims["aud"], claims["typ"]) == ("gateway", upstream, "service")
    assert token_issuer.token_requests == 2  # one token per upstream, reused


async def test_a_clients_own_service_token_never_reaches_an_upstream(
    gateway: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    forged = token_issuer.issue_service(caller="orders", audience="catalog")
    response = await gateway.get(
        "/v1/products", headers={"Fleet-Service-Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 200, response.text
    received = response.json()
    assert received["headers"]["fleet-service-authorization"] != f"Bearer {forged}"
    assert received["header_names"].count("fleet-service-authorization") == 1
