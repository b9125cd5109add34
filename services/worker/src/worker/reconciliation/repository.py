"""Queries of reconciliation runs and of the schedule that starts them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from chassis.db import Repository
from chassis.sql import qualified, sql
from worker.models import ERROR_MAX_LENGTH, Reconciliation, ReconciliationStatus, Schedule

_SCHEDULES = qualified(Schedule.__table__)  # type: ignore[arg-type]
# The row of a schedule, due at once the first time any replica looks.
_ENSURE = f"INSERT INTO {_SCHEDULES} (name, next_run_at) VALUES ($1, now()) ON CONFLICT DO NOTHING"  # noqa: S608
# The period's claim: only the replica whose update finds the schedule due moves it on (the
# row's lock makes the others wait, then find it no longer due). It holds the period until the
# next one is due.
_CLAIM = f"""
UPDATE {_SCHEDULES}
SET next_run_at = now() + $2, last_sent_at = now(), last_sent_by = $3
WHERE name = $1 AND next_run_at <= now()
RETURNING name
"""  # noqa: S608


class ReconciliationRepository(Repository):
    async def add(self, run: Reconciliation) -> None:
        self._session.add(run)
        await self._session.flush()

    async def locked(self, run_id: uuid.UUID) -> Reconciliation | None:
        query = select(Reconciliation).where(Reconciliation.id == run_id).with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def latest(self, limit: int) -> list[Reconciliation]:
        query = (
            select(Reconciliation)
            .order_by(Reconciliation.created_at.desc(), Reconciliation.id.desc())
            .limit(limit)
        )
        return list((await self._session.execute(query)).scalars())

    async def last_completed(self) -> Reconciliation | None:
        query = (
            select(Reconciliation)
            .where(Reconciliation.status == ReconciliationStatus.COMPLETED)
            .order_by(Reconciliation.finished_at.desc())
            .limit(1)
        )
        return (await self._session.execute(query)).scalar_one_or_none()

    async def get(self, run_id: uuid.UUID) -> Reconciliation | None:
        return await self._session.get(Reconciliation, run_id)

    async def complete(
        self,
        run: Reconciliation,
        *,
        orders_checked: int,
        reservations_checked: int,
        by_kind: dict[str, int],
        report_key: str,
    ) -> None:
        run.status = ReconciliationStatus.COMPLETED
        run.orders_checked = orders_checked
        run.reservations_checked = reservations_checked
        run.mismatches_by_kind = by_kind
        run.mismatches = sum(by_kind.values())
        run.report_key = report_key
        run.finished_at = datetime.now(UTC)
        await self._session.flush()

    async def fail(self, run: Reconciliation, reason: str) -> None:
        run.status = ReconciliationStatus.FAILED
        run.reason = reason[:ERROR_MAX_LENGTH]
        run.finished_at = datetime.now(UTC)
        await self._session.flush()

    async def claim_period(self, name: str, *, every: timedelta, replica: str) -> bool:
        """Whether this replica holds the schedule's current period (and so sends its command)."""
        connection = await sql(self._session)
        await connection.execute(_ENSURE, name)
        return await connection.fetchval(_CLAIM, name, every, replica[:200]) is not None
