"""Hot-path statements share the unit of work's transaction and are traced like SQLAlchemy's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from chassis_tracing_support import recorded_spans
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.db import UnitOfWork, session_factory
from chassis.sql import sql

tracer = trace.get_tracer("test")


@pytest.fixture
async def table(engine: AsyncEngine) -> AsyncIterator[str]:
    name = f"sql_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {name} (id uuid PRIMARY KEY, v text)"))
    yield name
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {name}"))


async def _values(engine: AsyncEngine, table: str) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(f"SELECT v FROM {table} ORDER BY v"))).scalars())


async def test_statements_commit_and_roll_back_with_the_unit_of_work(
    engine: AsyncEngine, table: str
) -> None:
    uow = UnitOfWork(session_factory(engine))
    async with uow:
        # The first statement of the transaction is a driver statement: it must begin it.
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'kept')", uuid.uuid4()
        )
        await uow.session.execute(text(f"INSERT INTO {table} VALUES (gen_random_uuid(), 'mixed')"))
        await uow.commit()
    async with uow:
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'rolled back')", uuid.uuid4()
        )
    async with uow:
        await uow.session.execute(text(f"INSERT INTO {table} VALUES (gen_random_uuid(), 'first')"))
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'also rolled back')", uuid.uuid4()
        )
    assert await _values(engine, table) == ["kept", "mixed"]


async def test_a_session_gets_a_fresh_transaction_after_a_commit(
    engine: AsyncEngine, table: str
) -> None:
    uow = UnitOfWork(session_factory(engine))
    async with uow:
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'a')", uuid.uuid4()
        )
        await uow.commit()
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'b')", uuid.uuid4()
        )
        # leaving without a second commit rolls `b` back
    assert await _values(engine, table) == ["a"]


async def test_rows_come_back_with_python_types(engine: AsyncEngine, table: str) -> None:
    row_id = uuid.uuid4()
    uow = UnitOfWork(session_factory(engine))
    async with uow:
        statements = await sql(uow.session)
        await statements.execute(f"INSERT INTO {table} VALUES ($1, 'x')", row_id)
        row = await statements.fetchrow(f"SELECT id, v, '{{\"a\": 1}}'::jsonb AS doc FROM {table}")
    assert row is not None
    assert isinstance(row["id"], uuid.UUID)
    assert row["id"] == row_id
    assert row["doc"] == {"a": 1}


async def test_each_statement_in_a_trace_is_a_client_span_and_a_failure_marks_it(
    engine: AsyncEngine, table: str
) -> None:
    exporter = recorded_spans()
    uow = UnitOfWork(session_factory(engine))
    with tracer.start_as_current_span("request"):
        async with uow:
            statements = await sql(uow.session)
            await statements.fetchval(f"SELECT count(*) FROM {table}")
            with pytest.raises(asyncpg.UndefinedColumnError):
                await statements.fetchval(f"SELECT no_such_column FROM {table}")
    spans = {
        (s.attributes or {}).get("db.query.text"): s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.CLIENT
    }
    counted = spans[f"SELECT count(*) FROM {table}"]
    assert counted.name.startswith("SELECT ")
    assert counted.status.status_code is StatusCode.UNSET
    assert spans[f"SELECT no_such_column FROM {table}"].status.status_code is StatusCode.ERROR


async def test_statements_outside_any_trace_record_no_span(engine: AsyncEngine) -> None:
    exporter = recorded_spans()
    uow = UnitOfWork(session_factory(engine))
    async with uow:
        await (await sql(uow.session)).fetchval("SELECT 1 AS untraced_poll")
    assert not [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("db.query.text") == "SELECT 1 AS untraced_poll"
    ]


async def test_a_statement_without_a_transaction_is_committed_on_its_own(
    engine: AsyncEngine, table: str
) -> None:
    uow = UnitOfWork(session_factory(engine))
    async with uow:
        await (await sql(uow.session, begin=False)).execute(
            f"INSERT INTO {table} VALUES ($1, 'autocommitted')", uuid.uuid4()
        )
        # A later statement that needs the transaction begins it; leaving rolls that back only.
        await (await sql(uow.session)).execute(
            f"INSERT INTO {table} VALUES ($1, 'rolled back')", uuid.uuid4()
        )
    assert await _values(engine, table) == ["autocommitted"]
