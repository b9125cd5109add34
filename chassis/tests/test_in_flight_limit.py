"""Bounded in-flight work: past the limit a request is refused at once, never queued."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter

from chassis.app import create_app
from chassis.settings import ServiceSettings
from fleetctl.testing import app_client


async def test_requests_past_the_limit_are_refused_at_once_and_probes_still_answer() -> None:
    arrived = asyncio.Semaphore(0)
    release = asyncio.Event()
    router = APIRouter()

    @router.get("/hold")
    async def hold() -> dict[str, bool]:
        arrived.release()
        await release.wait()
        return {"held": True}

    settings = ServiceSettings(service_name="limited", max_in_flight_requests=2)
    app = create_app(settings=settings, routers=[router], checks=lambda _: [])
    async with app_client(app) as client:
        held = [asyncio.create_task(client.get("/hold")) for _ in range(2)]
        for _ in held:
            await arrived.acquire()  # both are inside the handler now

        refused = await client.get("/hold")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/overloaded")
        assert (await client.get("/livez")).status_code == 200

        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await client.get("/hold")).status_code == 200


async def test_the_limit_counts_requests_in_the_app_not_finished_ones(
    client: httpx.AsyncClient,
) -> None:
    # The sample app allows 100 at once by default: sequential requests never come near it.
    for _ in range(150):
        assert (await client.post("/widgets", json={"name": "w", "size": 1})).status_code == 201
