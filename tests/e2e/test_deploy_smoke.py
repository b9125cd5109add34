"""The deployment smoke test (`deploy/scripts/smoke.py`, run by the deploy workflow after every
release and rollback) passes against a real fleet and fails when a service behind the gateway
is down: the same script, run as the workflow runs it, against the fleet of this session."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from e2e_support import RunningFleet, register_and_login

SMOKE = Path(__file__).resolve().parents[2] / "deploy" / "scripts" / "smoke.py"
UNKNOWN_SUBSCRIPTION = "/v1/webhooks/subscriptions/00000000-0000-4000-8000-000000000000/deliveries"


async def _smoke(url: str, *, email: str, password: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SMOKE),
        url,
        "--wait",
        "10",
        env={"SMOKE_EMAIL": email, "SMOKE_PASSWORD": password, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_smoke_test_passes_against_a_healthy_fleet(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    account = await register_and_login(gateway)
    code, output = await _smoke(
        running_fleet.gateway, email=account["email"], password=account["password"]
    )
    assert code == 0, output
    assert "9/9 checks passed" in output, output
    assert "FAIL" not in output, output


async def test_smoke_test_fails_while_the_worker_is_down(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    account = await register_and_login(gateway)
    await running_fleet.fleet.stop_service("worker")
    try:
        code, output = await _smoke(
            running_fleet.gateway, email=account["email"], password=account["password"]
        )
    finally:
        await running_fleet.restart("worker")
    assert code == 1, output
    failed = [line for line in output.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == ["FAIL worker"], output
    # Leave the worker reachable through the gateway for the tests that follow.
    headers = {"Authorization": f"Bearer {account['access_token']}"}
    for _ in range(100):
        if (await gateway.get(UNKNOWN_SUBSCRIPTION, headers=headers)).status_code == 404:
            break
        await asyncio.sleep(0.1)
    assert (await gateway.get(UNKNOWN_SUBSCRIPTION, headers=headers)).status_code == 404
