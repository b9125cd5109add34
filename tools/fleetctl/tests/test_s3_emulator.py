"""The local S3 emulator: `make up`'s supervised process, and the in-process server of tests."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator

import httpx
import pytest

from fleetctl.s3_emulator import EmulatorFailedError, EmulatorProcess, S3Emulator
from fleetctl.stack import Stack
from fleetctl.testing import eventually


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def bucket_status(url: str) -> int:
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            return (await client.head(url)).status_code
        except httpx.HTTPError:
            return 0


async def test_make_ups_emulator_serves_its_bucket_comes_back_after_a_crash_and_stops() -> None:
    lines: list[str] = []
    emulator = EmulatorProcess(port=free_port(), bucket="fleet", emit=lines.append)
    bucket = f"{emulator.url}/fleet"
    await emulator.start()
    try:
        assert await bucket_status(bucket) == 200
        pid = emulator.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

        async def back() -> bool:
            return emulator.restarts == 1 and await bucket_status(bucket) == 200

        await eventually(back, timeout=30)
        assert any("the S3 emulator exited" in line for line in lines)
    finally:
        await emulator.stop()
    assert await bucket_status(bucket) == 0
    assert emulator.pid is None


async def test_make_ups_emulator_on_a_port_in_use_fails_with_its_output(taken_port: int) -> None:
    emulator = EmulatorProcess(port=taken_port, bucket="fleet", emit=lambda _: None)

    with pytest.raises(EmulatorFailedError, match="exited"):
        await emulator.start()


def test_the_in_process_emulator_refuses_a_port_in_use(taken_port: int) -> None:
    with pytest.raises(OSError, match="in use"):
        S3Emulator(port=taken_port).start()


def test_the_worker_of_the_local_stack_writes_to_the_emulators_bucket() -> None:
    env = Stack.from_env({"S3_PORT": "9123"}).env_for("worker")

    assert env["S3_ENDPOINT_URL"] == "http://127.0.0.1:9123"
    assert env["S3_BUCKET"] == "fleet"
    assert env["S3_CREATE_BUCKET"] == "true"
    assert (env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"]) == ("fleet", "fleet-secret")
