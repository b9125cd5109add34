"""Service identity across the running fleet: auth issues each calling service a token for one
callee (OAuth 2.0 client credentials), and an internal-only route (catalog's price read for
orders, the worker's reads of orders and reservations) answers only the service it serves, with
that service's token, and is not public."""

from __future__ import annotations

import uuid

import httpx
import jwt
import pytest
from e2e_support import RunningFleet, bearer, create_product, register_and_login

from fleetctl.stack import client_secret
from fleetctl.testing import assert_problem, eventually
from worker.settings import WorkerSettings
from worker.sources import sources

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


async def test_the_worker_reads_every_order_and_reservation_with_its_own_token(
    running_fleet: RunningFleet, gateway: httpx.AsyncClient
) -> None:
    product = await create_product(gateway, stock=5, price=700, name="Reconciled item")
    user = await register_and_login(gateway)
    customer = uuid.UUID(
        jwt.decode(user["access_token"], options={"verify_signature": False})["sub"]
    )
    placed = await gateway.post(
        "/v1/orders",
        headers={**bearer(user["access_token"]), "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"product_id": product, "quantity": 2}]},
    )
    assert placed.status_code == 202, placed.text
    order = placed.json()["id"]

    async def confirmed() -> bool:
        read = await gateway.get(f"/v1/orders/{order}", headers=bearer(user["access_token"]))
        return bool(read.json()["status"] == "confirmed")

    await eventually(confirmed, timeout=20)
    stack = running_fleet.stack
    settings = WorkerSettings(
        _env_file=None,
        fleet_env="test",
        auth_token_url=f"{stack.url('auth')}/v1/auth/token",
        service_client_secret=client_secret("worker"),
        orders_url=stack.url("orders"),
        catalog_url=stack.url("catalog"),
    )
    async with sources(settings) as (orders, reservations):
        history = [o async for o in orders.orders(user_id=customer)]
        by_id = [o.id async for o in orders.orders(order_by="id", page_size=1000)]
        held = [r async for r in reservations.reservations(page_size=1000)]

    assert [(str(o.id), o.status, o.total_cents) for o in history] == [(order, "confirmed", 1400)]
    assert [(str(i.product_id), i.quantity) for i in history[0].items] == [(product, 2)]
    assert uuid.UUID(order) in by_id
    assert by_id == sorted(by_id)
    assert [
        (str(r.product_id), r.quantity, r.status) for r in held if str(r.order_id) == order
    ] == [(product, 2, "reserved")]
    # Nobody else's token, and not through the gateway.
    gateway_token = (await _service_token(running_fleet, "gateway", "orders")).json()
    async with httpx.AsyncClient(base_url=stack.url("orders"), timeout=10) as direct:
        from_gateway = await direct.get(
            "/internal/v1/orders", headers={HEADER: f"Bearer {gateway_token['access_token']}"}
        )
    assert_problem(from_gateway, 403, "caller-not-allowed")
    assert (await gateway.get("/internal/v1/orders")).status_code == 404
    assert (await gateway.get("/internal/v1/reservations")).status_code == 404


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
    not_for_the_worker = await _service_token(running_fleet, "worker", "auth")
    assert not_for_the_worker.status_code == 400
    assert not_for_the_worker.json()["error"] == "invalid_target"
