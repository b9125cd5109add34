"""The whole fleet as real processes on free loopback ports, in a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

import httpx
import pytest
from e2e_support import RunningFleet, e2e_stack

from fleetctl.bootstrap import bootstrap, drop_database
from fleetctl.s3_emulator import EmulatorProcess
from fleetctl.smtp_sink import MailSink
from fleetctl.supervisor import Fleet


@pytest.fixture(scope="session")
async def running_fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningFleet]:
    stack = e2e_stack(tmp_path_factory.mktemp("fleet-state"))
    sink = MailSink(stack.mail_dir, port=stack.smtp_port).start()
    # The worker's object storage, on the port its environment names (S3_ENDPOINT_URL).
    s3 = EmulatorProcess(port=stack.s3_port, bucket=stack.s3_bucket, emit=lambda _: None)
    await s3.start()
    await bootstrap(stack, seed=True)
    fleet = Fleet(stack)
    try:
        await fleet.start()
        await fleet.wait_ready(60)
        yield RunningFleet(stack, fleet, sink)
    finally:
        await fleet.stop()
        await s3.stop()
        sink.stop()
        await drop_database(stack)


@pytest.fixture
async def gateway(running_fleet: RunningFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        yield client


# A failing end-to-end test shows what the services were saying: CI keeps no other trace of it.
REPORTED_LOG_LINES = 40


def _log_lines(fleet: Fleet, name: str) -> list[str]:
    """The service's last log lines, without the console exporter's spans (one JSON per line)."""
    lines = [line for line in fleet.tail(name).splitlines() if '"context": {' not in line]
    return lines[-REPORTED_LOG_LINES:]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    running = getattr(item, "funcargs", {}).get("running_fleet")
    if report.failed and isinstance(running, RunningFleet):
        for name in running.fleet.services:
            report.sections.append(
                (f"fleet log: {name} (last lines)", "\n".join(_log_lines(running.fleet, name)))
            )
    return report
