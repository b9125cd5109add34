"""Service identity across the running fleet: auth issues each calling service a token for one
callee (OAuth 2.0 client credentials), and an internal-only route (catalog's price read for
orders) answers only the service it serves, with that service's token, and is not public."""

from __future__ import annotations

import httpx
import pytest
from e2e_support import RunningFleet, create_product, register_and_login

from fleetctl.stack import client_secret
from fleetctl.testing import assert_problem

pytestmark = pytest.mark.e2e

HEADER = "Fleet-Service-Authorization"


async def _service_token(fleet: RunningFleet, client: str, audience: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=fleet.stack.url("auth"), timeout=10) as auth:
        return await auth.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client,
                "client_secret": client_secret(client),
                "audience": audience,
            },
        )


async def test_an_internal_route_answers_only_its_caller_with_its_own_token(
    running_fleet: RunningFleet, gateway: httpx.AsyncClient
) -> None:
    product = await create_product(gateway, stock=1, price=990, name="Identity item")
    path = f"/internal/v1/products/{product}"
    user = await register_and_login(gateway)
    orders_token = await _service_token(running_fleet, "orders", "catalog")
    assert orders_token.status_code == 200, orders_token.text
    gateway_token = await _service_token(running_fleet, "gateway", "catalog")
    assert gateway_token.status_code == 200, gateway_token.text

    async with httpx.AsyncClient(
        base_url=running_fleet.stack.url("catalog"), timeout=10
    ) as catalog:
        anonymous = await catalog.get(path)
        with_user_token = await catalog.get(
            path, headers={HEADER: f"Bearer {user['access_token']}"}
        )
        from_gateway = await catalog.get(
            path, headers={HEADER: f"Bearer {gateway_token.json()['access_token']}"}
        )
        from_orders = await catalog.get(
            path, headers={HEADER: f"Bearer {orders_token.json()['access_token']}"}
        )
    assert_problem(anonymous, 401, "invalid-service-token")
    assert 'realm="fleet-service"' in anonymous.headers["www-authenticate"]
    assert_problem(with_user_token, 401, "invalid-service-token")
    assert_problem(from_gateway, 403, "caller-not-allowed")
    assert from_orders.status_code == 200, from_orders.text
    assert from_orders.json()["price_cents"] == 990
    # Not a public route: the gateway does not route it.
    assert (await gateway.get(path)).status_code == 404


async def test_a_client_gets_tokens_only_with_its_secret_and_only_for_its_callees(
    running_fleet: RunningFleet,
) -> None:
    async with httpx.AsyncClient(base_url=running_fleet.stack.url("auth"), timeout=10) as auth:
        wrong = await auth.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "orders",
                "client_secret": "not-the-secret",
                "audience": "catalog",
            },
        )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    not_a_callee = await _service_token(running_fleet, "orders", "worker")
    assert not_a_callee.status_code == 400
    assert not_a_callee.json()["error"] == "invalid_target"
