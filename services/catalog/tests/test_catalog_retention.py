"""Retention of the catalog's messaging tables: published outbox rows go `OUTBOX_RETENTION_DAYS`
after publication, unpublished ones never; handled-event inbox rows go `INBOX_RETENTION_DAYS`
after handling, newer ones stay; every replica purges by itself while it serves. Ages are set in
SQL (`now() - interval`), never waited for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.models import inbox, outbox
from catalog.retention import purger
from catalog.settings import CatalogSettings
from chassis.db import create_engine
from chassis.retention import Purger
from fleetctl.testing import eventually

OUTBOX = outbox.table
INBOX = inbox.table
DAY = timedelta(days=1)


@dataclass
class MessagingRows:
    """Rows a test inserts straight into the catalog's outbox and inbox, deleted again afterwards
    so that no relay of a later test publishes them."""

    engine: AsyncEngine
    sent: list[uuid.UUID] = field(default_factory=list)
    handled: list[uuid.UUID] = field(default_factory=list)

    async def outbox_row(self, *, created: timedelta, published: timedelta | None) -> uuid.UUID:
        event_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(OUTBOX).values(
                    event_id=event_id,
                    event_type="stock.reserved.v1",
                    body={},
                    created_at=sa.func.now() - created,
                    published_at=None if published is None else sa.func.now() - published,
                )
            )
        self.sent.append(event_id)
        return event_id

    async def inbox_row(self, *, handled: timedelta) -> uuid.UUID:
        event_id = uuid.uuid4()
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(INBOX).values(
                    event_id=event_id,
                    event_type="order.placed.v1",
                    processed_at=sa.func.now() - handled,
                )
            )
        self.handled.append(event_id)
        return event_id

    async def left(self) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        async with self.engine.connect() as conn:
            for column, ids in ((OUTBOX.c.event_id, self.sent), (INBOX.c.event_id, self.handled)):
                query = sa.select(column).where(column.in_(ids))
                found |= set((await conn.execute(query)).scalars())
        return found

    async def remove(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.event_id.in_(self.sent)))
            await conn.execute(sa.delete(INBOX).where(INBOX.c.event_id.in_(self.handled)))


@pytest.fixture
async def rows(catalog_database_url: str) -> AsyncIterator[MessagingRows]:
    engine = create_engine(catalog_database_url)
    inserted = MessagingRows(engine)
    try:
        yield inserted
    finally:
        await inserted.remove()
        await engine.dispose()


def catalog_purger(rows: MessagingRows, settings: CatalogSettings) -> Purger:
    """The purger the catalog runs (see `catalog.main`)."""
    return purger(rows.engine, settings)


async def test_published_outbox_rows_go_after_the_retention_and_unpublished_ones_never(
    rows: MessagingRows, make_settings: Callable[..., CatalogSettings]
) -> None:
    expired = await rows.outbox_row(created=9 * DAY, published=7 * DAY + timedelta(minutes=1))
    # Kept for 7 days after publication, however old the event itself is.
    published_lately = await rows.outbox_row(
        created=30 * DAY, published=6 * DAY + timedelta(hours=23)
    )
    never_published = await rows.outbox_row(created=400 * DAY, published=None)

    deleted = await catalog_purger(rows, make_settings()).purge()

    assert deleted["outbox"] >= 1
    assert expired not in await rows.left()
    assert await rows.left() == {published_lately, never_published}


async def test_inbox_rows_newer_than_the_retention_are_kept(
    rows: MessagingRows, make_settings: Callable[..., CatalogSettings]
) -> None:
    expired = await rows.inbox_row(handled=7 * DAY + timedelta(minutes=1))
    recent = await rows.inbox_row(handled=6 * DAY + timedelta(hours=23))
    fresh = await rows.inbox_row(handled=timedelta(0))

    deleted = await catalog_purger(rows, make_settings(inbox_retention_days=7)).purge()

    assert deleted["inbox"] >= 1
    assert expired not in await rows.left()
    assert await rows.left() == {recent, fresh}


async def test_the_retentions_are_configurable(
    rows: MessagingRows, make_settings: Callable[..., CatalogSettings]
) -> None:
    sent = await rows.outbox_row(created=4 * DAY, published=3 * DAY + timedelta(minutes=1))
    handled = await rows.inbox_row(handled=3 * DAY + timedelta(minutes=1))

    await catalog_purger(rows, make_settings()).purge()
    assert await rows.left() == {sent, handled}

    await catalog_purger(rows, make_settings(outbox_retention_days=3)).purge()
    assert await rows.left() == {handled}

    await catalog_purger(rows, make_settings(inbox_retention_days=3)).purge()
    assert await rows.left() == set()


async def test_the_catalog_purges_by_itself_at_start_and_then_periodically(
    rows: MessagingRows,
    make_settings: Callable[..., CatalogSettings],
    run_app: Callable[..., Any],
) -> None:
    await rows.outbox_row(created=20 * DAY, published=10 * DAY)
    await rows.inbox_row(handled=10 * DAY)

    async def all_gone() -> bool:
        return await rows.left() == set()

    async with run_app(make_settings(retention_scan_seconds=0.2)):
        await eventually(all_gone)
        # Inserted while the catalog runs: found by a later pass.
        await rows.outbox_row(created=20 * DAY, published=10 * DAY)
        await rows.inbox_row(handled=10 * DAY)
        await eventually(all_gone)
