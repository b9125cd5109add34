"""The gateway protects the fleet and degrades gracefully: limits, breakers, BFF."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from e2e_support import RunningFleet, bearer, register_and_login

pytestmark = pytest.mark.e2e


async def test_login_brute_force_is_limited_per_username_with_rate_limit_headers(
    gateway: httpx.AsyncClient,
) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    attempts = [
        await gateway.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": victim, "password": f"guess-{i}"},
        )
        for i in range(11)
    ]
    assert [r.status_code for r in attempts[:10]] == [401] * 10
    limited = attempts[10]
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-limit"] == "10"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert int(limited.headers["ratelimit-reset"]) >= 1
    # Another account behind the same address is not locked out by the attacker.
    other = await gateway.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": f"x-{uuid.uuid4().hex[:6]}@example.com",
            "password": "whatever",
        },
    )
    assert other.status_code == 401


async def test_a_forged_x_forwarded_for_does_not_buy_a_fresh_login_budget(
    gateway: httpx.AsyncClient,
) -> None:
    # The peer (127.0.0.1, as a sidecar proxy would be) is not a trusted proxy: a client that
    # names a new address in every attempt must still be limited as the one address it is.
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    statuses = [
        (
            await gateway.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": victim, "password": f"guess-{i}"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            )
        ).status_code
        for i in range(11)
    ]
    assert statuses == [401] * 10 + [429]


async def test_circuit_opens_while_catalog_is_down_and_closes_when_it_returns(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    await running_fleet.fleet.stop_service("catalog")
    try:
        failures = [await gateway.get("/v1/products") for _ in range(8)]
        assert {r.status_code for r in failures} == {503}
        kinds = [r.json()["type"].rsplit("/", 1)[-1] for r in failures]
        assert "circuit-open" in kinds
        assert kinds[-1] == "circuit-open"  # later calls fail fast without trying
        assert int(failures[-1].headers["retry-after"]) >= 1
    finally:
        await running_fleet.restart("catalog")
    for _ in range(100):
        if (await gateway.get("/v1/products", params={"limit": 1})).status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await gateway.get("/v1/products", params={"limit": 1})).status_code == 200


async def test_bff_home_degrades_to_empty_orders_when_orders_is_down(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    session = await register_and_login(gateway)
    healthy = await gateway.get("/v1/bff/home", headers=bearer(session["access_token"]))
    assert healthy.status_code == 200
    assert healthy.json()["degraded"] == []
    assert healthy.json()["featured"]
    await running_fleet.fleet.stop_service("orders")
    try:
        degraded = await gateway.get("/v1/bff/home", headers=bearer(session["access_token"]))
        assert degraded.status_code == 200
        assert degraded.json()["degraded"] == ["recent_orders"]
        assert degraded.json()["recent_orders"] == []
        assert degraded.json()["featured"]
    finally:
        await running_fleet.restart("orders")
