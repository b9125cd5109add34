"""Every service restarted in turn under steady traffic through the gateway: no request fails."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from e2e_support import RunningFleet, create_product, register_and_login

from chaos.load import LoadReport, SteadyLoad

pytestmark = pytest.mark.e2e


async def _products(gateway: httpx.AsyncClient, count: int) -> list[str]:
    return [await create_product(gateway, stock=1_000_000, price=700) for _ in range(count)]


async def test_restarting_every_service_in_turn_under_load_fails_no_request(
    running_fleet: RunningFleet, gateway: httpx.AsyncClient
) -> None:
    tokens = [(await register_and_login(gateway))["access_token"] for _ in range(4)]
    load = SteadyLoad(
        running_fleet.gateway,
        tokens=tokens,
        products=await _products(gateway, 3),
        orders_per_second=8,
        reads_per_order=2,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop))
    before = {name: svc.process.pid for name, svc in running_fleet.fleet.running.items()}
    try:
        await load.wait_answered(20, 30)
        took = await running_fleet.fleet.roll_all()
        # Traffic goes on after the last restart, until what was sent during it is answered.
        await load.wait_answered(len(load.journeys) + 20, 30)
    finally:
        stop.set()
        report: LoadReport = await running
    after = {name: svc.process.pid for name, svc in running_fleet.fleet.running.items()}
    summary = report.summary()
    assert set(took) == set(before)
    assert all(after[name] != before[name] for name in before), (before, after)
    assert report.failures == [], summary
    assert summary["accepted"] == summary["orders"] >= 40, summary
