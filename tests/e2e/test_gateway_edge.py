"""The gateway's own duties: request ids end to end, fast failure when an upstream is down, and
browser clients (CORS) served at the edge."""

from __future__ import annotations

import time

import httpx
import pytest
from e2e_support import RunningFleet

pytestmark = pytest.mark.e2e


async def test_request_id_is_echoed_or_generated(gateway: httpx.AsyncClient) -> None:
    echoed = await gateway.get(
        "/v1/products", params={"limit": 1}, headers={"X-Request-ID": "e2e-trace-42"}
    )
    assert echoed.headers["x-request-id"] == "e2e-trace-42"
    generated = await gateway.get("/v1/products", params={"limit": 1})
    assert generated.headers["x-request-id"]


APP = "https://app.fleet.test"  # E2E_SETTINGS' CORS_ALLOWED_ORIGINS


async def test_a_browser_app_places_orders_across_origins_and_reads_the_gateways_problems(
    gateway: httpx.AsyncClient,
) -> None:
    preflight = await gateway.options(
        "/v1/orders",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "idempotency-key"} <= {h.strip() for h in allowed.split(",")}
    # The gateway's own 401 problem is readable by the page, and so is a product list.
    refused = await gateway.post("/v1/orders", headers={"Origin": APP}, json={"items": []})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP
    products = await gateway.get("/v1/products", headers={"Origin": APP})
    assert products.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in products.headers["access-control-expose-headers"].lower()
    # Another site gets the answer (it is public) but no grant: its page cannot read it.
    other = await gateway.get("/v1/products", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_every_service_serves_probes_and_metrics(running_fleet: RunningFleet) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for name in running_fleet.fleet.running:
            base = running_fleet.stack.url(name)
            assert (await client.get(f"{base}/livez")).status_code == 200, name
            assert (await client.get(f"{base}/readyz")).status_code == 200, name
            metrics = (await client.get(f"{base}/metrics")).text
            assert "http_requests_total" in metrics, name
            assert "http_request_duration_seconds_bucket" in metrics, name


async def test_upstream_down_is_a_fast_503_and_recovers(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    await running_fleet.fleet.stop_service("catalog")
    try:
        started = time.monotonic()
        # A copy in the gateway's cache would still be served: ask catalog itself.
        response = await gateway.get("/v1/products", headers={"Cache-Control": "no-cache"})
        elapsed = time.monotonic() - started
        assert response.status_code in (502, 503)
        assert response.headers["content-type"] == "application/problem+json"
        assert elapsed < 3, f"upstream failure took {elapsed:.2f}s"
    finally:
        await running_fleet.restart("catalog")
    assert (await gateway.get("/v1/products")).status_code == 200
