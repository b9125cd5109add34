"""Run the fleet as local processes: interleaved prefixed logs, readiness wait, clean stop.

Children run in their own sessions so a Ctrl-C reaches only the supervisor, which then sends each
service one SIGTERM (the graceful path: stop accepting, finish in-flight requests, close pools)
and kills whatever is still alive after the grace period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from fleetctl.stack import SERVICES, Stack

COLORS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m")
RESET = "\033[0m"
SERVICE_NAMES = tuple(s.name for s in SERVICES)


class FleetFailedError(RuntimeError):
    """A service exited or did not become ready; the message carries its last log lines."""


@dataclass
class ServiceProcess:
    name: str
    process: asyncio.subprocess.Process
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=5000))
    pump: asyncio.Task[None] | None = None


class Fleet:
    def __init__(
        self,
        stack: Stack,
        *,
        services: Sequence[str] = SERVICE_NAMES,
        emit: Callable[[str], None] | None = None,
        colors: bool = False,
    ) -> None:
        self.stack = stack
        self.services = list(services)
        self.emit = emit
        self.colors = colors
        self.running: dict[str, ServiceProcess] = {}

    def _prefix(self, name: str) -> str:
        width = max(len(s) for s in self.services)
        label = f"{name:<{width}} |"
        if not self.colors:
            return label
        color = COLORS[self.services.index(name) % len(COLORS)]
        return f"{color}{label}{RESET}"

    async def _pump(self, svc: ServiceProcess) -> None:
        assert svc.process.stdout is not None
        prefix = self._prefix(svc.name)
        async for raw in svc.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            svc.tail.append(line)
            if self.emit is not None:
                self.emit(f"{prefix} {line}")

    async def start_service(self, name: str) -> ServiceProcess:
        env = {**os.environ, **self.stack.env_for(name)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            name,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        svc = ServiceProcess(name, process)
        svc.pump = asyncio.create_task(self._pump(svc))
        self.running[name] = svc
        return svc

    async def start(self) -> None:
        for name in self.services:
            await self.start_service(name)

    def _failure(self, name: str, why: str) -> FleetFailedError:
        svc = self.running[name]
        tail = "\n".join(list(svc.tail)[-60:])
        return FleetFailedError(f"{name} {why}; its last output:\n{tail}")

    async def wait_ready(self, timeout: float = 60.0, names: Sequence[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.running)
        async with httpx.AsyncClient(timeout=1.0) as client:
            while pending:
                for name in sorted(pending):
                    svc = self.running[name]
                    if svc.process.returncode is not None:
                        raise self._failure(name, f"exited with {svc.process.returncode}")
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{self.stack.url(name)}/readyz")
                        if response.status_code == 200:
                            pending.discard(name)
                if pending and time.monotonic() > deadline:
                    raise self._failure(sorted(pending)[0], f"not ready after {timeout:.0f} s")
                if pending:
                    await asyncio.sleep(0.2)

    async def wait_any_exit(self) -> str:
        """Block until some service exits; return its name."""
        waits = {asyncio.create_task(s.process.wait()): n for n, s in self.running.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]

    async def stop_service(self, name: str, grace: float = 8.0) -> int | None:
        svc = self.running.pop(name)
        if svc.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                svc.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(svc.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    svc.process.kill()
                await svc.process.wait()
        if svc.pump is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(svc.pump, 1.0)
        return svc.process.returncode

    async def stop(self, grace: float = 8.0) -> dict[str, int | None]:
        """SIGTERM every service at once, then kill stragglers after `grace` seconds."""
        names = list(self.running)
        codes = await asyncio.gather(*(self.stop_service(n, grace) for n in names))
        return dict(zip(names, codes, strict=True))

    def tail(self, name: str) -> str:
        svc = self.running.get(name)
        return "\n".join(svc.tail) if svc else ""
