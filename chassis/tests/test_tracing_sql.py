"""Statement spans never change what a statement does: errors and cancellations pass unchanged."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from chassis_tracing_support import recorded_spans
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

tracer = trace.get_tracer("test")


async def test_a_failing_statement_raises_its_own_error_and_marks_its_span(
    engine: AsyncEngine,
) -> None:
    exporter = recorded_spans()
    with tracer.start_as_current_span("request"), pytest.raises(ProgrammingError):
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT no_such_column FROM no_such_table"))
    [failed] = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("db.query.text") == "SELECT no_such_column FROM no_such_table"
    ]
    assert failed.status.status_code is StatusCode.ERROR


async def test_a_cancelled_statement_is_still_cancelled(engine: AsyncEngine) -> None:
    recorded_spans()
    started = asyncio.Event()

    async def slow() -> None:
        with tracer.start_as_current_span("request"):
            async with engine.connect() as conn:
                started.set()
                await conn.execute(sa.text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_a_query_outside_any_trace_records_no_span(engine: AsyncEngine) -> None:
    exporter = recorded_spans()
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1 AS background_poll"))
    assert not [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("db.query.text") == "SELECT 1 AS background_poll"
    ]
