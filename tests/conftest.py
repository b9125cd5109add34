"""The whole fleet as real processes on free loopback ports, in a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from e2e_support import RunningFleet, e2e_stack

from fleetctl.bootstrap import bootstrap, drop_database
from fleetctl.smtp_sink import MailSink
from fleetctl.supervisor import Fleet


@pytest.fixture(scope="session")
async def running_fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningFleet]:
    stack = e2e_stack(tmp_path_factory.mktemp("fleet-state"))
    sink = MailSink(stack.mail_dir, port=stack.smtp_port).start()
    await bootstrap(stack, seed=True)
    fleet = Fleet(stack)
    try:
        await fleet.start()
        await fleet.wait_ready(60)
        yield RunningFleet(stack, fleet, sink)
    finally:
        await fleet.stop()
        sink.stop()
        await drop_database(stack)


@pytest.fixture
async def gateway(running_fleet: RunningFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        yield client
