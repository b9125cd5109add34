"""Background loops that claim due rows and work on each in a task of its own.

A loop runs :meth:`Loop.run_once` whenever it is woken (a consumed event was committed) or every
`poll_seconds` (work of other replicas, retries coming due). Stopping takes no new work, gives
the tasks in hand a grace period to finish, then cancels what is left: the rows of cancelled
work keep their lease and are claimed again once it runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from typing import Any

from chassis.logging import get_logger

log = get_logger(__name__)


class Loop(ABC):
    name = "loop"

    def __init__(self, *, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def run_once(self) -> bool:
        """Claim due work and start it with :meth:`spawn`; True if more may be due already."""

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._in_flight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._wake.set()  # capacity is free again

        task.add_done_callback(done)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, grace: float) -> None:
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + grace
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=grace)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=max(deadline - time.monotonic(), 0))
        if self._in_flight:
            log.warning(f"{self.name}_stopped_with_work_in_hand", tasks=len(self._in_flight))
        leftovers = [*self._in_flight, *([self._task] if self._task else [])]
        for task in leftovers:
            task.cancel()
        for task in leftovers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                more = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"{self.name}_failed", error=type(exc).__name__, detail=str(exc))
                more = False
            if more or self._stopping:
                continue
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` may swallow a
            # cancellation that arrives as the wake-up fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
