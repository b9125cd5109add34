"""Deleting rows that outlived their retention, one bounded batch per statement.

A batch is one short transaction:

    DELETE FROM t WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM t WHERE <age> < now() - <keep> ORDER BY <age> LIMIT n
        FOR UPDATE SKIP LOCKED))

The inner query walks the index on the age column from the oldest row and stops after `n`; the
delete then fetches exactly those rows by their physical address (a TID scan: no join, no scan
of the table, however many rows expired). No statement removes more than `n` rows or holds its
locks longer than that takes, and rows someone else holds (a writer, or another replica's purge)
are skipped, not waited for: every replica may purge at once, and each row is deleted by one of
them. Expiry is decided by the database's clock (`now()`), the same for all replicas.

A purge pass takes one batch of each table in turn until none is left, so a large backlog in one
table does not hold up the others, and a table whose purge fails (logged) does not stop them.

A service runs its purger in the background for as long as it serves: `Purger.loop` is the
background loop (`chassis.loops`) its lifespan adds to `app.state.loops` (a pass at once, then
every `RETENTION_SCAN_SECONDS`). Stopping lets the batch in flight finish within the grace period
or cancels it, which rolls it back: its rows are deleted by the next pass, here or elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import QueryableAttribute

from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from chassis.metrics import initialise_labels

ROWS_PURGED = Counter(
    "retention_purged_rows_total",
    "Rows deleted because they outlived their retention, by table.",
    ["table"],
)

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Expiry:
    """Rows of `table` whose `age` column is more than `keep` in the past (and that match
    `only`, if given) may go. `age` must be indexed: the purge walks that index."""

    table: sa.Table
    age: sa.ColumnElement[datetime] | QueryableAttribute[datetime]
    keep: timedelta
    only: sa.ColumnElement[bool] | None = None
    # What else goes with the rows (the files they name in a bucket): called with `returning`
    # of the batch's deleted rows inside the batch's transaction, so the rows are deleted only
    # if it succeeds (a failure rolls the batch back, for the next pass to try again).
    returning: sa.ColumnElement[Any] | QueryableAttribute[Any] | None = None
    also_delete: Callable[[list[Any]], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        return self.table.name

    def expired(self) -> sa.ColumnElement[bool]:
        condition = self.age < sa.func.now() - self.keep
        return condition if self.only is None else sa.and_(self.only, condition)


class Purger:
    def __init__(self, engine: AsyncEngine, expiries: Sequence[Expiry], *, batch_size: int) -> None:
        names = [expiry.name for expiry in expiries]
        if len(set(names)) != len(names):
            msg = f"one expiry per table: {sorted(names)}"
            raise ValueError(msg)
        if batch_size < 1:
            msg = f"batch_size must be at least 1, not {batch_size}"
            raise ValueError(msg)
        self.engine = engine
        self.expiries = tuple(expiries)
        self.batch_size = batch_size
        initialise_labels(ROWS_PURGED, table=names)

    async def purge_batch(self, expiry: Expiry) -> int:
        """Delete up to `batch_size` expired rows of one table; how many were deleted."""
        ctid: sa.ColumnClause[Any] = sa.literal_column("ctid")
        doomed = (
            sa.select(ctid)
            .select_from(expiry.table)
            .where(expiry.expired())
            .order_by(expiry.age)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
            .correlate(None)  # the subquery reads the table itself, not the DELETE's row
        )
        # `= ANY(ARRAY(...))`, not `IN (...)`: with IN, Postgres may hash-join the ids against a
        # scan of the whole table; this way the subquery runs once and the delete is a TID scan.
        statement = sa.delete(expiry.table).where(
            ctid == sa.any_(sa.func.array(doomed.scalar_subquery()))
        )
        async with self.engine.begin() as conn:
            if expiry.returning is None or expiry.also_delete is None:
                deleted = (await conn.execute(statement)).rowcount
            else:
                gone = list((await conn.execute(statement.returning(expiry.returning))).scalars())
                await expiry.also_delete([value for value in gone if value is not None])
                deleted = len(gone)
        ROWS_PURGED.labels(expiry.name).inc(deleted)
        return deleted

    async def purge(self) -> dict[str, int]:
        """Delete every row expired by now, a batch per table in turn; rows deleted per table.
        A table whose batch fails is left for the next pass (logged), the others go on."""
        deleted = dict.fromkeys((expiry.name for expiry in self.expiries), 0)
        remaining = list(self.expiries)
        while remaining:
            for expiry in list(remaining):
                try:
                    count = await self.purge_batch(expiry)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "retention_purge_failed",
                        table=expiry.name,
                        error=type(exc).__name__,
                        detail=str(exc),
                    )
                    remaining.remove(expiry)
                    continue
                deleted[expiry.name] += count
                if count < self.batch_size:
                    remaining.remove(expiry)
        for name, count in deleted.items():
            if count:
                log.info("retention_purged", table=name, rows=count)
        return deleted

    def loop(self, *, every_seconds: float) -> BackgroundLoop:
        """The background loop of this purger: a pass at once, then every `every_seconds`."""

        async def step() -> bool:
            await self.purge()  # drains what expired by now, batch by batch
            return False

        return BackgroundLoop("retention", step, every_seconds=every_seconds)
