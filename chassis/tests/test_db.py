"""The unit of work commits only when told to; anything else rolls back; an unreachable
database is a 503 problem."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from chassis.db import (
    DatabaseUnavailableError,
    UnitOfWork,
    create_engine,
    engine_for,
    session_factory,
    settle_after_commit,
)
from chassis.settings import WithDatabase
from chassis.sql import sql
from fleetctl.testing import FleetDatabase, eventually


async def test_unit_of_work_commits_explicitly_and_rolls_back_otherwise(
    fleet_database: FleetDatabase,
) -> None:
    engine = create_engine(fleet_database.url_for("orders"))
    table = f"uow_{uuid.uuid4().hex[:8]}"
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (v text)"))
        uow = UnitOfWork(session_factory(engine))
        async with uow:
            await uow.session.execute(text(f"INSERT INTO {table} VALUES ('kept')"))
            await uow.commit()
        async with uow:
            await uow.session.execute(text(f"INSERT INTO {table} VALUES ('forgotten')"))
        with pytest.raises(RuntimeError):  # noqa: PT012 - the failure must happen inside the block
            async with uow:
                await uow.session.execute(text(f"INSERT INTO {table} VALUES ('failed')"))
                raise RuntimeError
        async with engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT v FROM {table}"))).scalars().all()
        assert rows == ["kept"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()


async def test_statement_timeout_bounds_every_query(fleet_database: FleetDatabase) -> None:
    engine = create_engine(fleet_database.url_for("orders"), statement_timeout_ms=200)
    try:
        async with engine.connect() as conn:
            with pytest.raises(Exception, match=r"statement timeout|canceling statement"):
                await conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        await engine.dispose()


async def test_pool_saturation_is_exported_while_connections_are_checked_out(
    fleet_database: FleetDatabase,
) -> None:
    engine = engine_for(
        WithDatabase(
            database_url=fleet_database.url_for("orders"), db_pool_size=3, db_max_overflow=2
        )
    )
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            assert REGISTRY.get_sample_value("db_pool_checked_out_connections") == 2
        assert REGISTRY.get_sample_value("db_pool_checked_out_connections") == 0
        assert REGISTRY.get_sample_value("db_pool_max_connections") == 5
    finally:
        await engine.dispose()


async def test_a_connection_the_server_closed_is_replaced_at_checkout(
    fleet_database: FleetDatabase,
) -> None:
    engine = create_engine(fleet_database.url_for("orders"), pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(fleet_database.stack.admin_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)

            async def ended() -> bool:
                query = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
                return bool(await admin.fetchval(query, pid))

            # The signal is asynchronous: wait until the server has ended that backend.
            await eventually(ended)
        finally:
            await admin.close()
        # The pooled connection is now dead; the first statement of the next checkout succeeds
        # on a fresh one (no error reaches the caller, as after a Postgres restart).
        async with engine.connect() as conn:
            fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()


async def test_a_connection_left_inside_a_transaction_is_never_reused(
    fleet_database: FleetDatabase,
) -> None:
    """A pooled connection returned with a transaction still open on the server (a cancellation
    that hit its BEGIN) would make every later "commit" on it a savepoint release inside that
    transaction: answered as done, lost when the connection ends. It is replaced at checkout."""
    engine = create_engine(fleet_database.url_for("orders"), pool_size=1, max_overflow=0)
    table = f"uow_{uuid.uuid4().hex[:8]}"
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE {table} (v text)"))
        async with engine.connect() as conn:
            fairy = await conn.get_raw_connection()
            assert fairy.dbapi_connection is not None
            driver = fairy.dbapi_connection.driver_connection
            poisoned = driver.get_server_pid()
            # What a cancelled BEGIN leaves: the server in a transaction, asyncpg's transaction
            # object set, SQLAlchemy's adapter knowing of none (so its rollback does nothing).
            await driver.transaction().start()
        uow = UnitOfWork(session_factory(engine))
        async with uow:
            statements = await sql(uow.session)
            await statements.execute(f"INSERT INTO {table} VALUES ('committed')")
            used = await statements.fetchval("SELECT pg_backend_pid()")
            await uow.commit()
        assert used != poisoned
        admin = await asyncpg.connect(fleet_database.stack.admin_dsn)
        try:
            assert await admin.fetchval(f"SELECT count(*) FROM orders.{table}") == 1
        finally:
            await admin.close()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()


async def test_a_connection_still_cancelling_a_statement_is_never_reused(
    fleet_database: FleetDatabase,
) -> None:
    """A statement cancelled client-side is settled with the server in the background; until
    then the connection refuses statements ("another operation is in progress", a 500 for the
    request that got it). Such a connection is replaced at checkout."""
    engine = create_engine(fleet_database.url_for("orders"), pool_size=1, max_overflow=0)
    admin = await asyncpg.connect(fleet_database.stack.admin_dsn)
    try:
        async with engine.connect() as conn:
            fairy = await conn.get_raw_connection()
            assert fairy.dbapi_connection is not None
            driver = fairy.dbapi_connection.driver_connection
            busy = driver.get_server_pid()
            sleeping = asyncio.ensure_future(driver.execute("SELECT pg_sleep(5)"))

            async def running() -> bool:
                query = "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1"
                return bool(await admin.fetchval(query, busy))

            await eventually(running)
            sleeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sleeping
            assert driver._protocol._is_cancelling()
        async with engine.connect() as conn:
            used = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert used != busy
    finally:
        await admin.close()
        await engine.dispose()


async def test_after_commit_runs_on_the_real_commit_only(fleet_database: FleetDatabase) -> None:
    engine = create_engine(fleet_database.url_for("orders"))
    ran: list[str] = []
    try:
        uow = UnitOfWork(session_factory(engine))
        async with uow:
            uow.after_commit(lambda: ran.append("committed"))
            await uow.session.execute(text("SELECT 1"))
            async with uow.session.begin_nested():
                uow.after_commit(lambda: ran.append("savepoint's, at the commit"))
            assert ran == []  # releasing the savepoint is no commit
            await uow.commit()
        assert ran == ["committed", "savepoint's, at the commit"]
        async with uow:
            uow.after_commit(lambda: ran.append("rolled back"))
            await uow.session.execute(text("SELECT 1"))
        async with uow:
            await uow.session.execute(text("SELECT 1"))
            await uow.commit()
        assert ran == ["committed", "savepoint's, at the commit"]
    finally:
        await engine.dispose()


async def test_an_async_after_commit_action_runs_as_a_task_the_shutdown_can_wait_for(
    fleet_database: FleetDatabase,
) -> None:
    engine = create_engine(fleet_database.url_for("orders"))
    release = asyncio.Event()
    done: list[str] = []

    async def invalidate() -> None:
        await release.wait()
        done.append("invalidated")

    async def broken() -> None:
        msg = "cache gone"
        raise ConnectionError(msg)

    try:
        uow = UnitOfWork(session_factory(engine))
        async with uow:
            uow.after_commit(invalidate)
            uow.after_commit(broken)
            await uow.session.execute(text("SELECT 1"))
            await uow.commit()  # returns while the action waits: it runs in a task of its own
        assert done == []
        with capture_logs() as logged:
            settling = asyncio.create_task(settle_after_commit())
            release.set()
            await settling
        assert done == ["invalidated"]
        assert [entry["error"] for entry in logged if entry["event"] == "after_commit_failed"] == [
            "ConnectionError"
        ]

        async with uow:
            uow.after_commit(invalidate)  # rolled back: never started
            await uow.session.execute(text("SELECT 1"))
        await settle_after_commit()
        assert done == ["invalidated"]
    finally:
        await engine.dispose()


async def _end_backend(fleet_database: FleetDatabase, pid: int) -> None:
    """End a server backend, as a fast restart or failover does, under whoever uses it."""
    admin = await asyncpg.connect(fleet_database.stack.admin_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_database_that_cannot_be_reached_is_a_503_problem_not_a_crash() -> None:
    # Nothing listens on port 1: as while Postgres restarts or fails over.
    unreachable = create_engine("postgresql+asyncpg://fleet@127.0.0.1:1/none")
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            async with UnitOfWork(session_factory(unreachable)) as uow:
                await uow.session.execute(text("SELECT 1"))
        assert raised.value.status == 503
        assert raised.value.headers["Retry-After"] == "1"
    finally:
        await unreachable.dispose()


async def test_a_connection_cut_in_the_middle_of_a_unit_of_work_is_a_503_problem(
    engine: AsyncEngine, fleet_database: FleetDatabase
) -> None:
    with pytest.raises(DatabaseUnavailableError):  # noqa: PT012 - the failure is inside
        async with UnitOfWork(session_factory(engine)) as uow:
            pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await _end_backend(fleet_database, pid)
            await uow.session.execute(text("SELECT pg_sleep(2)"))


async def test_a_wrong_statement_is_not_mistaken_for_an_unreachable_database(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any error but that one
        async with UnitOfWork(session_factory(engine)) as uow:
            await uow.session.execute(text("SELECT * FROM no_such_table_anywhere"))
    assert not isinstance(raised.value, DatabaseUnavailableError)


async def test_a_socket_error_of_something_else_in_the_unit_of_work_stays_what_it_is(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(ConnectionRefusedError):  # noqa: PT012 - the failure is inside
        async with UnitOfWork(session_factory(engine)) as uow:
            await uow.session.execute(text("SELECT 1"))
            # e.g. an HTTP call to another service, made while the transaction is open
            await asyncio.open_connection("127.0.0.1", 1)


async def test_any_error_on_a_connection_the_server_ended_is_a_503_problem(
    engine: AsyncEngine, fleet_database: FleetDatabase
) -> None:
    # asyncpg may report a connection lost mid-statement as a protocol error ("another operation
    # is in progress"); what decides is that the unit of work's connection is gone.
    with pytest.raises(DatabaseUnavailableError):  # noqa: PT012 - the failure is inside
        async with UnitOfWork(session_factory(engine)) as uow:
            statements = await sql(uow.session)
            await _end_backend(fleet_database, await statements.fetchval("SELECT pg_backend_pid()"))
            with contextlib.suppress(Exception):
                await statements.fetchval("SELECT pg_sleep(1)")  # notices the loss
            assert statements.closed()
            raise asyncpg.exceptions.InternalClientError("another operation is in progress")


async def test_a_cancellation_on_a_lost_connection_stays_a_cancellation(
    engine: AsyncEngine, fleet_database: FleetDatabase
) -> None:
    # A background loop cancelled at shutdown, while its connection is gone, must stop: turned
    # into DatabaseUnavailableError, the cancellation would be taken for a failure and retried.
    with pytest.raises(asyncio.CancelledError):  # noqa: PT012 - the failure is inside
        async with UnitOfWork(session_factory(engine)) as uow:
            statements = await sql(uow.session)
            await _end_backend(fleet_database, await statements.fetchval("SELECT pg_backend_pid()"))
            with contextlib.suppress(Exception):
                await statements.fetchval("SELECT pg_sleep(1)")
            raise asyncio.CancelledError


async def test_a_cancellation_stays_a_cancellation_when_the_rollback_fails(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What asyncpg says when a cancellation hit the transaction's BEGIN: the rollback cannot run.
    # The connection goes back to the pool still in a transaction (checkout discards it); the
    # task must still end cancelled, not with the rollback's error.
    async def cannot_roll_back(self: object) -> None:
        message = "cannot rollback; the transaction is in error state"
        raise asyncpg.exceptions.InterfaceError(message)

    with pytest.raises(asyncio.CancelledError):  # noqa: PT012 - the failure is inside
        async with UnitOfWork(session_factory(engine)) as uow:
            await uow.session.execute(text("SELECT 1"))
            monkeypatch.setattr(type(uow.session), "rollback", cannot_roll_back)
            raise asyncio.CancelledError
