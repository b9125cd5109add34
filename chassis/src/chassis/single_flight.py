"""Coalescing within one process: concurrent calls for the same key share one run of the work.

The first caller of a key starts the work as a task of its own; callers arriving while it runs
wait for that task instead of starting another, and all get its result or its exception. The
task is shielded from its callers: one caller going away (a client disconnecting) does not
cancel the work the others wait for. Once it is done the key is free again, and `on_done` (when
given) sees the finished task, e.g. to note a failure. Used by the gateway's response cache
(`gateway.edge_cache`: one upstream request per missed URL) and the service tokens
(`chassis.service_tokens`: one request to auth per audience).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(
        self,
        *,
        name: str = "single-flight",
        on_done: Callable[[str, asyncio.Task[T]], None] | None = None,
    ) -> None:
        """`name` prefixes the tasks' names (`<name> <key>`)."""
        self._name = name
        self._on_done = on_done
        self._running: dict[str, asyncio.Task[T]] = {}

    def __contains__(self, key: str) -> bool:
        """Whether a run of `key` is under way."""
        return key in self._running

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """`work()`'s result, and whether it came from a run another caller started."""
        joined = key in self._running
        return await asyncio.shield(self.start(key, work)), joined

    def start(self, key: str, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """The running task of `key`, started now unless one runs already."""
        task = self._running.get(key)
        if task is not None:
            return task

        async def run() -> T:
            return await work()

        task = asyncio.get_running_loop().create_task(run(), name=f"{self._name} {key}")
        self._running[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waited for is not logged as lost
        if self._on_done is not None:
            self._on_done(key, task)

    async def aclose(self) -> None:
        """Cancel what still runs (at shutdown, before the clients the work uses are closed)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
