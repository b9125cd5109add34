"""Background loops: the work a service does beside its requests for as long as it serves.

Every loop of the fleet is a `BackgroundLoop` (the outbox relay, the DLQ depth gauge, the
retention purge, orders' timeout sweeper, the worker's mail sender and webhook dispatcher). A
loop runs one *step* after another:

- at once again when the step says more work is due already (it returned True);
- otherwise when woken (`wake()`: a NOTIFY, a committed event, a finished task freeing capacity)
  or after `every_seconds`, whichever comes first;
- a step that raises is logged (`<name>_failed`), counted in
  `background_loop_failures_total{loop}` and tried again after a backoff: `every_seconds`
  doubled per consecutive failure up to `max_backoff_seconds`, with jitter so that replicas
  failing together do not retry together; a `wake()` ends the backoff early;
- a step may hand pieces of work to tasks of their own (`spawn`); the loop tracks them, and a
  finished one wakes the loop (its capacity is free again);
- it runs outside any trace: whichever request or test started it, its spans are its own.

`check()` is the loop's readiness: it fails while the loop is stuck (a step running, or steps
failing without a success, for longer than `stuck_after_seconds`) or ended on its own. Stopping
takes no new step, lets the step and the spawned work in hand finish within the grace period,
cancels what is left (work that was cancelled is claimed again: its rows keep their lease or
roll back), then runs `on_stop` (closing the loop's own connections).

A service registers its loops on `app.state.loops` (a `Loops`, made by `chassis.app.create_app`)
in its lifespan: the group starts each loop as it is added, puts every loop's check into
`/readyz`, and stops them all, in its own order, from the lifespan's exit (the chassis stops
any left when the lifespan ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from opentelemetry import context as otel_context
from prometheus_client import Counter

from chassis.health import Check
from chassis.logging import get_logger
from chassis.metrics import initialise_labels

LOOP_FAILURES = Counter(
    "background_loop_failures_total",
    "Steps of a background loop that failed (the loop goes on after a backoff), by loop.",
    ["loop"],
)

log = get_logger(__name__)

Step = Callable[[], Awaitable[bool]]


class LoopStuckError(RuntimeError):
    """Raised by a loop's readiness check while the loop makes no progress."""


class BackgroundLoop:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        every_seconds: float,
        max_backoff_seconds: float = 30.0,
        stuck_after_seconds: float | None = None,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if every_seconds <= 0:
            msg = f"every_seconds must be positive, not {every_seconds}"
            raise ValueError(msg)
        self.name = name
        self.every_seconds = every_seconds
        self.max_backoff_seconds = max(max_backoff_seconds, every_seconds)
        # A pass of a slow loop (an hourly purge) may take minutes; never less than a minute.
        self.stuck_after_seconds = stuck_after_seconds or max(60.0, 10 * every_seconds)
        self._step = step
        self._on_stop = on_stop
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._step_started: float | None = None  # monotonic, while a step runs
        self._failing_since: float | None = None  # monotonic, first failure of a streak
        self.failures = 0  # consecutive
        initialise_labels(LOOP_FAILURES, loop=[name])

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def in_flight(self) -> int:
        """Spawned tasks not finished yet."""
        return len(self._in_flight)

    def start(self) -> None:
        if self.running:
            msg = f"the {self.name} loop is running already"
            raise RuntimeError(msg)
        self._stopping = False
        self._failing_since = None
        self.failures = 0
        # Started in an empty context: the loop belongs to no trace.
        self._task = asyncio.create_task(self._run(), name=self.name, context=_untraced())

    def wake(self) -> None:
        self._wake.set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run one piece of work in a task of its own, tracked until it ends."""
        task = asyncio.create_task(work, name=name)
        self._in_flight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._wake.set()  # capacity is free again

        task.add_done_callback(done)

    async def stop(self, grace: float = 0.0) -> None:
        """Take no new step; give the step and the work in hand `grace` seconds, cancel the
        rest, then run `on_stop`. Nothing to do for a loop never started or stopped already."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + grace
        await asyncio.wait({task}, timeout=grace)
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=max(deadline - time.monotonic(), 0))
        if self._in_flight:
            log.warning(f"{self.name}_stopped_with_work_in_hand", tasks=len(self._in_flight))
        leftovers = [task, *self._in_flight]
        for left in leftovers:
            left.cancel()
        for left in leftovers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await left
        if self._on_stop is not None:
            await self._on_stop()

    def stuck(self) -> str | None:
        """Why the loop makes no progress, or None while it does."""
        if self._task is None:
            return None
        if self._task.done():
            return "ended"
        now = time.monotonic()
        if self._step_started is not None and now - self._step_started > self.stuck_after_seconds:
            return f"a step running for {now - self._step_started:.0f}s"
        if self._failing_since is not None and now - self._failing_since > self.stuck_after_seconds:
            return f"failing for {now - self._failing_since:.0f}s"
        return None

    def check(self) -> Check:
        async def probe() -> None:
            reason = self.stuck()
            if reason is not None:
                raise LoopStuckError(f"{self.name}: {reason}")

        return Check(f"loop:{self.name}", probe)

    def backoff(self) -> float:
        """The wait after the latest of `failures` consecutive failures."""
        ceiling = min(self.every_seconds * 2 ** (self.failures - 1), self.max_backoff_seconds)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the step: a wake-up for anything the step may have missed (a
            # NOTIFY after its snapshot, a task finishing) makes the next wait return at once.
            self._wake.clear()
            self._step_started = time.monotonic()
            try:
                more = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                more = False
            else:
                self.failures = 0
                self._failing_since = None
            finally:
                self._step_started = None
            if more or self._stopping:
                continue
            wait = self.backoff() if self.failures else self.every_seconds
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` may swallow a
            # cancellation that arrives as the wake-up fires, and `stop()` then waits in vain.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        LOOP_FAILURES.labels(self.name).inc()
        log.warning(
            f"{self.name}_failed",
            error=type(exc).__name__,
            detail=str(exc),
            failures=self.failures,
        )


def _untraced() -> contextvars.Context:
    """A copy of the current context variables with the OpenTelemetry context emptied."""
    token = otel_context.attach(otel_context.Context())
    try:
        return contextvars.copy_context()
    finally:
        otel_context.detach(token)


class Loops:
    """A service's background loops: started as they are added, checked by `/readyz`,
    stopped together."""

    def __init__(self) -> None:
        self._loops: list[BackgroundLoop] = []

    def add(self, loop: BackgroundLoop) -> BackgroundLoop:
        if any(known.name == loop.name for known in self._loops):
            msg = f"a loop named {loop.name!r} is registered already"
            raise ValueError(msg)
        self._loops.append(loop)
        loop.start()
        return loop

    def __iter__(self) -> Iterator[BackgroundLoop]:
        return iter(self._loops)

    def checks(self) -> list[Check]:
        return [loop.check() for loop in self._loops]

    async def stop(self, grace: float = 0.0) -> None:
        """Stop every loop still running, together, each within `grace`; the group is empty
        afterwards (a lifespan run again adds its loops anew)."""
        loops, self._loops = self._loops, []
        await asyncio.gather(*(loop.stop(grace) for loop in loops))
