"""`make up`'s engine: bootstrap, seed, serve through :PORT, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from e2e_support import e2e_stack

from fleetctl.bootstrap import drop_database
from fleetctl.stack import SERVICES

pytestmark = pytest.mark.e2e


async def _read_until(stream: asyncio.StreamReader, marker: str, timeout: float) -> list[str]:
    lines: list[str] = []

    async def scan() -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                msg = f"fleetctl ended before {marker!r}:\n" + "\n".join(lines[-40:])
                raise AssertionError(msg)
            lines.append(raw.decode(errors="replace").rstrip())
            if marker in lines[-1]:
                return

    await asyncio.wait_for(scan(), timeout)
    return lines


async def test_fleetctl_up_serves_seeded_fleet_and_stops_within_ten_seconds(
    tmp_path: Path,
) -> None:
    stack = e2e_stack(tmp_path)
    env = {
        **os.environ,
        "FLEET_DATABASE": stack.database,
        "FLEET_STATE_DIR": str(tmp_path),
        "FLEET_REDIS_KEY_PREFIX": stack.redis_key_prefix,
        "FLEET_AMQP_NAMESPACE": stack.amqp_namespace,
        "SMTP_PORT": str(stack.smtp_port),
        **{f"{s.name.upper()}_PORT": str(stack.port(s.name)) for s in SERVICES},
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleetctl",
        "up",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        lines = await _read_until(process.stdout, "fleet: ready", timeout=120)
        # Interleaved, prefixed logs of every service.
        assert {s.name for s in SERVICES} <= {line.split(" ", 1)[0] for line in lines}
        async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=5) as client:
            products = await client.get("/v1/products", params={"limit": 100})
            assert products.status_code == 200
            assert len(products.json()["items"]) >= 50
            admin = await client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": "admin@example.com",
                    "password": "admin-password-change-me",
                },
            )
            assert admin.status_code == 200
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        tail = await _read_until(process.stdout, "fleet: stopped", timeout=15)
        assert await asyncio.wait_for(process.wait(), 5) == 0
        assert time.monotonic() - started < 10
        assert all(f"{s.name}=0" in tail[-1] for s in SERVICES), tail[-1]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drop_database(stack)
