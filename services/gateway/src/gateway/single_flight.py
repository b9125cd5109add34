"""Request coalescing within one process: concurrent calls for the same key share one run.

The first caller of a key starts the work as a task of its own; callers arriving while it runs
wait for that task instead of starting another, and all get its result or its exception. The
task is shielded from its callers: one client going away does not cancel the work the others
wait for (nor the store it ends with).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """`work()`'s result, and whether it came from a run another caller started."""
        task = self._running.get(key)
        joined = task is not None
        if task is None:
            task = self.start(key, work)
        return await asyncio.shield(task), joined

    def start(self, key: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The running task of `key`, started now unless one runs already."""
        task = self._running.get(key)
        if task is not None:
            return task

        async def run() -> T:
            return await work()

        task = asyncio.get_running_loop().create_task(run(), name=f"single-flight {key}")
        self._running[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waited for is not logged as lost

    async def aclose(self) -> None:
        """Cancel what still runs (at shutdown, before the clients it uses are closed)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
