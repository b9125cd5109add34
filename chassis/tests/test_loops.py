"""Background loops: a step at once and whenever woken or due, failures logged, counted and
backed off, a stuck loop visible to readiness, an orderly stop, and no trace borrowed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from prometheus_client import REGISTRY

from chassis.loops import BackgroundLoop, Loops
from fleetctl.testing import eventually

LONG = 60.0  # a poll interval no test waits for: only a wake-up or "more" can run a step


def failures(name: str) -> float:
    return REGISTRY.get_sample_value("background_loop_failures_total", {"loop": name}) or 0.0


async def test_a_step_runs_at_once_again_while_more_is_due_and_when_woken() -> None:
    backlog = [True, True, False]  # two full batches, then a partial one
    steps = 0
    woken = asyncio.Event()

    async def step() -> bool:
        nonlocal steps
        steps += 1
        if steps == 4:
            woken.set()
        return backlog.pop(0) if backlog else False

    loop = BackgroundLoop("drain", step, every_seconds=LONG)
    loop.start()
    await eventually(lambda: steps == 3)
    loop.wake()
    await asyncio.wait_for(woken.wait(), 5)
    await loop.stop()
    assert steps == 4


async def test_a_failing_step_is_counted_backed_off_and_the_loop_goes_on() -> None:
    outcomes: list[BaseException | bool] = [RuntimeError("db down"), OSError("gone"), False]
    done = asyncio.Event()

    async def step() -> bool:
        outcome = outcomes.pop(0) if outcomes else False
        if not outcomes:
            done.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    before = failures("flaky")
    loop = BackgroundLoop("flaky", step, every_seconds=0.01, max_backoff_seconds=0.02)
    loop.start()
    await asyncio.wait_for(done.wait(), 5)
    await eventually(lambda: loop.failures == 0)
    await loop.stop()

    assert failures("flaky") == before + 2
    assert loop.stuck() is None


def test_the_backoff_doubles_per_failure_with_jitter_up_to_its_ceiling() -> None:
    async def never() -> bool:
        return False

    loop = BackgroundLoop("backoff", never, every_seconds=1.0, max_backoff_seconds=5.0)
    for count, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        loop.failures = count
        waits = [loop.backoff() for _ in range(50)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (count, waits)


def test_a_loop_is_exported_with_no_failures_before_its_first_step() -> None:
    async def never() -> bool:
        return False

    BackgroundLoop("fresh", never, every_seconds=1.0)
    assert REGISTRY.get_sample_value("background_loop_failures_total", {"loop": "fresh"}) == 0.0


async def test_a_step_that_hangs_makes_the_loop_stuck_and_stop_cancels_it() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang() -> bool:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return False

    loop = BackgroundLoop("hung", hang, every_seconds=LONG, stuck_after_seconds=0.05)
    loop.start()
    await asyncio.wait_for(started.wait(), 5)
    await eventually(lambda: loop.stuck() is not None)
    with pytest.raises(RuntimeError, match="hung: a step running for"):
        await loop.check().probe()

    await loop.stop(grace=0.05)
    assert cancelled.is_set()
    assert not loop.running


async def test_a_loop_that_keeps_failing_is_stuck_until_a_step_succeeds() -> None:
    healthy = False
    succeeded = asyncio.Event()

    async def step() -> bool:
        if not healthy:
            raise ConnectionError("broker gone")
        succeeded.set()
        return False

    loop = BackgroundLoop(
        "failing", step, every_seconds=0.01, max_backoff_seconds=0.01, stuck_after_seconds=0.05
    )
    loop.start()
    await eventually(lambda: loop.stuck() is not None)
    assert (loop.stuck() or "").startswith("failing for")

    healthy = True
    await asyncio.wait_for(succeeded.wait(), 5)
    await eventually(lambda: loop.stuck() is None)
    await loop.stop()


async def test_a_loop_that_ended_on_its_own_is_reported() -> None:
    async def crash() -> bool:
        raise asyncio.CancelledError  # what a cancelled piece of the step leaves behind

    loop = BackgroundLoop("crashed", crash, every_seconds=LONG)
    loop.start()
    await eventually(lambda: loop.stuck() == "ended")
    await loop.stop()


async def test_stop_lets_the_step_and_spawned_work_finish_within_the_grace_then_runs_on_stop() -> (
    None
):
    release = asyncio.Event()
    finished: list[str] = []
    closed = asyncio.Event()

    async def send(name: str) -> None:
        await release.wait()
        finished.append(name)

    async def close() -> None:
        closed.set()

    async def step() -> bool:
        loop.spawn(send("a"), name="send-a")
        loop.spawn(send("b"), name="send-b")
        return False

    loop = BackgroundLoop("sender", step, every_seconds=LONG, on_stop=close)
    loop.start()
    await eventually(lambda: loop.in_flight == 2)
    stopping = asyncio.create_task(loop.stop(grace=5))
    release.set()
    await stopping

    assert sorted(finished) == ["a", "b"]
    assert loop.in_flight == 0
    assert closed.is_set()


async def test_stop_cancels_spawned_work_past_the_grace() -> None:
    cancelled = asyncio.Event()

    async def stuck_send() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def step() -> bool:
        if loop.in_flight == 0:
            loop.spawn(stuck_send(), name="stuck")
        return False

    loop = BackgroundLoop("slow_sender", step, every_seconds=LONG)
    loop.start()
    await eventually(lambda: loop.in_flight == 1)
    await loop.stop(grace=0.05)

    assert cancelled.is_set()
    assert loop.in_flight == 0


async def test_a_loop_started_inside_a_trace_runs_outside_it() -> None:
    seen: list[bool] = []
    ran = asyncio.Event()

    async def step() -> bool:
        seen.append(trace.get_current_span().get_span_context().is_valid)
        ran.set()
        return False

    request = trace.NonRecordingSpan(
        trace.SpanContext(trace_id=0x1F, span_id=0x2F, is_remote=False)
    )
    with trace.use_span(request):
        assert trace.get_current_span().get_span_context().is_valid
        loop = BackgroundLoop("untraced", step, every_seconds=LONG)
        loop.start()
    await asyncio.wait_for(ran.wait(), 5)
    await loop.stop()
    assert seen == [False]


async def test_readiness_checks_every_loop_of_the_app_and_fails_while_one_is_stuck(
    sample_app: Callable[..., FastAPI],
) -> None:
    started = asyncio.Event()

    async def hang() -> bool:
        started.set()
        await asyncio.Event().wait()
        return False

    async def idle() -> bool:
        return False

    app = sample_app()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        loops: Loops = app.state.loops
        registered = [loops.add(BackgroundLoop("idle", idle, every_seconds=LONG))]
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"loop:idle": "ok"}

        registered.append(
            loops.add(BackgroundLoop("hung", hang, every_seconds=LONG, stuck_after_seconds=0.05))
        )
        await asyncio.wait_for(started.wait(), 5)
        await eventually(lambda: loops_stuck(loops))
        stuck = await http.get("/readyz")
        assert stuck.status_code == 503
        assert stuck.json()["checks"]["loop:hung"] == "error: LoopStuckError"
    # The lifespan's end stopped the loops it left running.
    assert not any(loop.running for loop in registered)


def loops_stuck(loops: Loops) -> bool:
    return any(loop.stuck() for loop in loops)


async def test_two_loops_of_one_name_cannot_be_registered() -> None:
    async def idle() -> bool:
        return False

    loops = Loops()
    loops.add(BackgroundLoop("twin", idle, every_seconds=LONG))
    with pytest.raises(ValueError, match="registered already"):
        loops.add(BackgroundLoop("twin", idle, every_seconds=LONG))
    await loops.stop()
