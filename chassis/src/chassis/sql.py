"""Hot-path SQL: statements sent straight to the driver, inside the unit of work's transaction.

SQLAlchemy builds and runs most statements. On the paths every order takes (outbox, inbox, the
saga's row locks, inserts and status changes) its cost per statement (cache-key generation,
execution context, result processing, a greenlet switch: about 120 µs on a small machine) is
several times the driver's own, and these paths run a dozen statements per order in each
service. `await sql(session)` hands out the session's own asyncpg connection, in the session's
transaction (begun if it was not yet), so these statements commit or roll back with everything
else the unit of work wrote. Inside a trace each statement gets the same CLIENT span as
SQLAlchemy's statements (`chassis.db.StatementSpans`).

Parameters are positional (`$1`, `$2`, ...). `jsonb` values go in as JSON text and come out
decoded, as the engine's codecs define; uuids come out as `uuid.UUID` instances.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import SQL_SESSION_KEY, StatementSpans, failed, statement_spans


def qualified(table: sa.Table) -> str:
    """The table's quoted, schema-qualified name, for statement templates."""
    schema = f'"{table.schema}".' if table.schema else ""
    return f'{schema}"{table.name}"'


class Sql:
    """Traced statements on one driver connection (see the module docstring)."""

    def __init__(
        self, connection: asyncpg.Connection, spans: StatementSpans, *, begun: bool
    ) -> None:
        self._connection = connection
        self._spans = spans
        self.begun = begun  # False: statements run in autocommit (see `sql(begin=False)`)

    def closed(self) -> bool:
        """Whether the driver connection is gone (the server ended it, or it broke)."""
        return bool(self._connection.is_closed())

    async def execute(self, query: str, *args: Any) -> str:
        """Run a statement; its status tag (`INSERT 0 1`, `UPDATE 3`, ...)."""
        status: str = await self._traced(query, self._connection.execute(query, *args))
        return status

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._traced(query, self._connection.fetch(query, *args))
        return rows

    async def _traced(self, query: str, statement: Awaitable[Any]) -> Any:
        """Await the driver's call inside the statement's span (when in a trace); an error
        marks the span and passes unchanged, a cancellation included."""
        span = self._spans.start(query)
        if span is None:
            return await statement
        try:
            result = await statement
        except BaseException as error:
            failed(span, error)
            raise
        span.end()
        return result

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        rows = await self.fetch(query, *args)
        return rows[0] if rows else None

    async def fetchval(self, query: str, *args: Any) -> Any:
        row = await self.fetchrow(query, *args)
        return None if row is None else row[0]


async def sql(session: AsyncSession, *, begin: bool = True) -> Sql:
    """The session's driver connection, in its current transaction (begun now if needed).

    `begin=False` is for a statement that needs no transaction of its own (a single read, or
    a single statement, which Postgres runs atomically anyway): if nothing began the session's
    transaction yet, it runs in autocommit, saving the BEGIN and ROLLBACK round trips.
    """
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(SQL_SESSION_KEY)
    if transaction is not None and cached is not None and cached[0] is transaction:
        statements: Sql = cached[1]
        if not begin or statements.begun:
            return statements
    connection = await session.connection()
    fairy = await connection.get_raw_connection()
    adapted: Any = fairy.dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, before its first statement; statements
    # sent around it must start that same transaction, or they would run in autocommit and
    # SQLAlchemy's COMMIT/ROLLBACK would not cover them. (Private API of the adapter: the unit
    # tests of this module fail loudly if a SQLAlchemy upgrade changes it.)
    if begin and adapted._transaction is None:
        await adapted._start_transaction()
    statements = Sql(
        adapted.driver_connection,
        statement_spans(connection.sync_engine),
        begun=adapted._transaction is not None,
    )
    session.info[SQL_SESSION_KEY] = (session.sync_session.get_transaction(), statements)
    return statements
