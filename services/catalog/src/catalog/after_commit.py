"""Work that may only happen once a transaction committed, such as invalidating the cache.

Consumed events are committed by the chassis consumer after their handler returned, so a handler
cannot run code after its own commit. It registers that code here instead: it runs as a task when
the session's transaction commits, and never if it rolls back. Invalidating before the commit would
let a concurrent reader put the old row back into the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import after_commit
from chassis.logging import get_logger

log = get_logger(__name__)

Action = Callable[[], Coroutine[Any, Any, None]]


class AfterCommit:
    """Schedules async actions on commit (`chassis.db.after_commit`) and keeps their tasks in
    hand, so a stop can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, session: AsyncSession, action: Action) -> None:
        """Run `action` once the session's current transaction commits; drop it on rollback."""

        def committed() -> None:
            task = asyncio.get_running_loop().create_task(self._run(action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        after_commit(session, committed)

    async def _run(self, action: Action) -> None:
        try:
            await action()
        except Exception as exc:  # the transaction is committed: log, never undo it
            log.warning("after_commit_failed", error=type(exc).__name__, detail=str(exc))

    async def settle(self) -> None:
        """Wait for every action scheduled so far (before closing what they use)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
