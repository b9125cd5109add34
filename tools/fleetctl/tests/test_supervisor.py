"""The supervisor restarts what dies, gives up on what cannot start, and rolls without a gap."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from fleetctl.stack import Stack
from fleetctl.supervisor import Fleet, RestartPolicy

pytestmark = pytest.mark.integration

FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, stable_after=60, crash_loop_limit=3)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway_only(tmp_path: Path, **env: str) -> Stack:
    """A gateway alone (it needs no database): enough to see processes come and go."""
    suffix = uuid.uuid4().hex[:8]
    return Stack.from_env().with_(
        state_dir=tmp_path,
        ports={"gateway": _free_port()},
        redis_key_prefix=f"supervisor:{suffix}:",
        fleet_env="test",
        extra_env=env,
    )


async def test_a_service_that_cannot_start_stops_supervision_with_its_last_output(
    tmp_path: Path,
) -> None:
    fleet = Fleet(
        _gateway_only(tmp_path, MAX_IN_FLIGHT_REQUESTS="0"),
        services=["gateway"],
        supervise=True,
        policy=FAST,
    )
    try:
        await fleet.start()
        failure = await asyncio.wait_for(fleet.failed(), 60)
    finally:
        await fleet.stop()
    assert "gateway is crash-looping: it exited 3 times in a row before it was ready" in str(
        failure
    )
    assert "max_in_flight_requests" in str(failure)  # the service's own words, from its output
    assert fleet.restarts["gateway"] == 2


async def test_a_killed_service_is_restarted_on_the_same_port_and_the_restart_is_logged(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    stack = _gateway_only(tmp_path)
    fleet = Fleet(stack, services=["gateway"], supervise=True, policy=FAST, emit=said.append)
    try:
        await fleet.start()
        await fleet.wait_ready(30)
        first = fleet.running["gateway"]
        os.kill(first.process.pid, signal.SIGKILL)
        # A request sent while no process runs waits in the socket's backlog for the next one.
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(f"{stack.url('gateway')}/livez")
        assert answer.status_code == 200
        assert fleet.running["gateway"] is not first
        assert fleet.restarts["gateway"] == 1
        assert any("gateway exited (killed by SIGKILL)" in line for line in said), said
    finally:
        await fleet.stop()


async def test_a_rolling_restart_replaces_the_process_while_requests_keep_being_answered(
    tmp_path: Path,
) -> None:
    stack = _gateway_only(tmp_path)
    fleet = Fleet(stack, services=["gateway"], supervise=True, policy=FAST)
    statuses: list[int | str] = []
    rolled = asyncio.Event()

    async def keep_asking() -> None:
        # A new connection per request: what is proven is the socket's handover (nothing refused,
        # nothing reset). A kept-alive connection the old process closes while draining is
        # HTTP's own race, which clients settle by repeating a safe request.
        no_keep_alive = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=10, limits=no_keep_alive) as client:
            while not rolled.is_set():
                try:
                    statuses.append((await client.get(f"{stack.url('gateway')}/livez")).status_code)
                except httpx.HTTPError as exc:
                    statuses.append(type(exc).__name__)

    try:
        await fleet.start()
        await fleet.wait_ready(30)
        before = fleet.running["gateway"].process.pid
        asking = asyncio.create_task(keep_asking())
        started = time.monotonic()
        await fleet.roll("gateway")
        after = fleet.running["gateway"].process.pid
        rolled.set()
        await asking
    finally:
        await fleet.stop()
    assert after != before
    assert fleet.restarts["gateway"] == 0  # a rolling restart is not a crash
    assert set(statuses) == {200}, statuses
    assert len(statuses) > 10
    assert time.monotonic() - started < 30
