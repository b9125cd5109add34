"""/readyz checks the gateway's own dependency (Redis), not the upstream services."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_ready_with_redis_even_when_every_upstream_is_down(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    down = {f"{name}_url": closed_port_url for name in ("auth", "catalog", "orders", "worker")}
    async with gateway_factory(**down) as gateway:
        response = await gateway.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"redis": "ok"}}


async def test_redis_outage_degrades_but_keeps_the_gateway_in_rotation(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    redis_url = closed_port_url.replace("http://", "redis://") + "/0"
    async with gateway_factory(redis_url=redis_url) as gateway:
        response = await gateway.get("/readyz")
        proxied = await gateway.get("/v1/products")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["redis"].startswith("error")
    assert proxied.status_code == 200
