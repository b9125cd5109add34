"""Queries of exports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from chassis.db import Repository
from worker.models import ERROR_MAX_LENGTH, Export, ExportStatus


class ExportRepository(Repository):
    async def add(self, export: Export) -> None:
        self._session.add(export)
        await self._session.flush()

    async def requested_by(self, requester: uuid.UUID, export_id: uuid.UUID) -> Export | None:
        """The export, when `requester` asked for it (anyone else's reads as absent)."""
        found = await self._session.get(Export, export_id)
        return found if found is not None and found.requested_by == requester else None

    async def locked(self, export_id: uuid.UUID) -> Export | None:
        """The export, locked until the transaction ends (one generation at a time)."""
        query = select(Export).where(Export.id == export_id).with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def mark_ready(
        self, export: Export, *, object_key: str, order_count: int, size_bytes: int
    ) -> None:
        export.status = ExportStatus.READY
        export.object_key = object_key
        export.order_count = order_count
        export.size_bytes = size_bytes
        export.finished_at = datetime.now(UTC)
        await self._session.flush()

    async def mark_failed(self, export: Export, reason: str) -> None:
        export.status = ExportStatus.FAILED
        export.reason = reason[:ERROR_MAX_LENGTH]
        export.finished_at = datetime.now(UTC)
        await self._session.flush()

    async def fail_overdue(self, *, deadline: timedelta, reason: str) -> list[Export]:
        """Exports pending longer than `deadline` become failed (their command was dead-lettered
        or keeps failing): a requester is never left waiting on `pending` forever."""
        statement = (
            update(Export)
            .where(Export.status == ExportStatus.PENDING)
            .where(Export.created_at < func.now() - deadline)
            .values(
                status=ExportStatus.FAILED,
                reason=reason[:ERROR_MAX_LENGTH],
                finished_at=func.now(),
            )
            .returning(Export)
        )
        return list((await self._session.execute(statement)).scalars())
