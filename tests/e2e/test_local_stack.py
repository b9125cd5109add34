"""`make up`'s engine: bootstrap, seed, serve through :PORT, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
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


class Output:
    """Every line `fleetctl up` prints, read as it comes (a full pipe would stall the fleet)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("<end of output>")
            self._changed.notify_all()

    async def wait_for(self, marker: str, timeout: float, *, after: int = 0) -> int:
        """Index of the first line from `after` on that contains `marker`."""

        def found() -> bool:
            return any(marker in line for line in self.lines[after:]) or (
                "<end of output>" in self.lines
            )

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(found), timeout)
        for index in range(after, len(self.lines)):
            if marker in self.lines[index]:
                return index
        raise AssertionError(f"no {marker!r} in fleetctl's output:\n" + "\n".join(self.lines[-40:]))


def _child_running(parent: int, module: str) -> int:
    """The pid of `parent`'s child process `python -m <module>`."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if argv[1:3] == [b"-m", module.encode()]:
            return int(pid)
    raise AssertionError(f"no {module} process under {parent}")


async def test_fleetctl_up_serves_restarts_what_dies_rolls_on_request_and_stops_in_ten_seconds(
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
        "S3_PORT": str(stack.s3_port),
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
    output = Output(process.stdout)
    try:
        ready = await output.wait_for("fleet: ready", timeout=120)
        lines = output.lines[:ready]
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
            # A service killed outright is restarted, and the restart is logged.
            os.kill(_child_running(process.pid, "catalog"), signal.SIGKILL)
            await output.wait_for("fleet: catalog exited (killed by SIGKILL)", 10, after=ready)
            assert (await client.get("/v1/products")).status_code == 200
            # `fleetctl restart SERVICE` replaces its process while the fleet serves.
            before = _child_running(process.pid, "orders")
            restart = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fleetctl", "restart", "orders",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            said, _ = await asyncio.wait_for(restart.communicate(), 60)
            assert restart.returncode == 0, said.decode()
            assert "orders restarted in" in said.decode()
            assert _child_running(process.pid, "orders") != before
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stopped = await output.wait_for("fleet: stopped", timeout=15)
        assert await asyncio.wait_for(process.wait(), 5) == 0
        assert time.monotonic() - started < 10
        assert all(f"{s.name}=0" in output.lines[stopped] for s in SERVICES), output.lines[stopped]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drop_database(stack)
