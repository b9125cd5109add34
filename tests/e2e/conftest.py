"""The whole fleet as real processes on free loopback ports, in a database of its own."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fleetctl.bootstrap import bootstrap, drop_database
from fleetctl.stack import SERVICES, Stack
from fleetctl.supervisor import Fleet

pytestmark = pytest.mark.e2e


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def e2e_stack(state_dir: Path) -> Stack:
    ports = dict(zip((s.name for s in SERVICES), free_ports(len(SERVICES)), strict=True))
    suffix = uuid.uuid4().hex[:10]
    return Stack.from_env().with_(
        database=f"fleet_e2e_{suffix}",
        redis_key_prefix=f"e2e:{suffix}:",
        state_dir=state_dir,
        ports=ports,
        fleet_env="test",
    )


@dataclass
class RunningFleet:
    stack: Stack
    fleet: Fleet

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")

    async def restart(self, name: str) -> None:
        await self.fleet.start_service(name)
        await self.fleet.wait_ready(30, names=[name])


@pytest.fixture(scope="session")
async def running_fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningFleet]:
    stack = e2e_stack(tmp_path_factory.mktemp("fleet-state"))
    await bootstrap(stack, seed=True)
    fleet = Fleet(stack)
    try:
        await fleet.start()
        await fleet.wait_ready(60)
        yield RunningFleet(stack, fleet)
    finally:
        await fleet.stop()
        await drop_database(stack)


@pytest.fixture
async def gateway(running_fleet: RunningFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        yield client


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def register_and_login(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = "correct horse battery"
) -> dict[str, str]:
    email = email or unique_email()
    registered = await client.post("/v1/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    token = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert token.status_code == 200, token.text
    return {"email": email, "password": password, **token.json()}


async def admin_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@example.com",
            "password": "admin-password-change-me",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


__all__ = ["asyncio"]
