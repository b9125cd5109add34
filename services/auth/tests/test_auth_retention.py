"""Retention of auth's outbox: published rows go `OUTBOX_RETENTION_DAYS` after publication,
unpublished ones never, and every replica purges by itself while it serves. Ages are set in SQL
(`now() - interval`), never waited for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.main import build_app
from auth.models import outbox
from auth.retention import purger
from auth.settings import AuthSettings
from chassis.db import create_engine
from chassis.retention import Purger
from fleetctl.testing import eventually

OUTBOX = outbox.table
DAY = timedelta(days=1)


@dataclass
class OutboxRows:
    """Rows a test inserts straight into auth's outbox, deleted again afterwards so that no relay
    of a later test publishes them."""

    engine: AsyncEngine
    ids: list[uuid.UUID] = field(default_factory=list)

    async def add(self, *, created: timedelta, published: timedelta | None) -> uuid.UUID:
        event_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(OUTBOX).values(
                    event_id=event_id,
                    event_type="user.registered.v1",
                    body={},
                    created_at=sa.func.now() - created,
                    published_at=None if published is None else sa.func.now() - published,
                )
            )
        self.ids.append(event_id)
        return event_id

    async def left(self) -> set[uuid.UUID]:
        query = sa.select(OUTBOX.c.event_id).where(OUTBOX.c.event_id.in_(self.ids))
        async with self.engine.connect() as conn:
            return set((await conn.execute(query)).scalars())

    async def remove(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.event_id.in_(self.ids)))


@pytest.fixture
async def rows(auth_database_url: str) -> AsyncIterator[OutboxRows]:
    engine = create_engine(auth_database_url)
    inserted = OutboxRows(engine)
    try:
        yield inserted
    finally:
        await inserted.remove()
        await engine.dispose()


def auth_purger(rows: OutboxRows, settings: AuthSettings, **overrides: object) -> Purger:
    """The purger auth runs (see `auth.main`), with some settings changed."""
    return purger(rows.engine, settings.model_copy(update=overrides))


async def test_published_outbox_rows_go_after_the_retention_and_unpublished_ones_never(
    rows: OutboxRows, settings: AuthSettings
) -> None:
    expired = await rows.add(created=9 * DAY, published=7 * DAY + timedelta(minutes=1))
    # Kept for 7 days after publication, however old the event itself is.
    published_lately = await rows.add(created=30 * DAY, published=6 * DAY + timedelta(hours=23))
    never_published = await rows.add(created=400 * DAY, published=None)

    deleted = await auth_purger(rows, settings).purge()

    assert deleted["outbox"] >= 1
    assert expired not in await rows.left()
    assert await rows.left() == {published_lately, never_published}


async def test_the_outbox_retention_is_configurable(
    rows: OutboxRows, settings: AuthSettings
) -> None:
    two_days_old = await rows.add(created=3 * DAY, published=2 * DAY + timedelta(minutes=1))

    await auth_purger(rows, settings).purge()
    assert await rows.left() == {two_days_old}

    await auth_purger(rows, settings, outbox_retention_days=2).purge()
    assert await rows.left() == set()


async def test_auth_purges_its_outbox_by_itself_at_start_and_then_periodically(
    rows: OutboxRows, settings: AuthSettings
) -> None:
    before_start = await rows.add(created=20 * DAY, published=10 * DAY)
    app = build_app(settings.model_copy(update={"retention_scan_seconds": 0.2}))

    async with app.router.lifespan_context(app):
        await _until_gone(rows, before_start)
        # Published long ago but inserted while the service runs: found by a later pass.
        while_serving = await rows.add(created=20 * DAY, published=10 * DAY)
        await _until_gone(rows, while_serving)


async def _until_gone(rows: OutboxRows, event_id: uuid.UUID) -> None:
    async def gone() -> bool:
        return event_id not in await rows.left()

    await eventually(gone)
