"""Retention purges: only expired rows go, in bounded batches, safely from several replicas at
once, in the background of a serving service until it stops; published outbox rows and
handled-event inbox rows are kept for their retention. Ages are set with SQL timestamps
(`now() - interval`), never waited for."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from chassis_messaging_support import Bench, messaging_bench
from prometheus_client import REGISTRY
from pydantic import ValidationError

from chassis.db import create_engine
from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox
from chassis.messaging.retention import inbox_expiry, outbox_expiry, service_purger
from chassis.messaging.runtime import BrokerSettings
from chassis.retention import Expiry, Purger
from fleetctl.testing import FleetDatabase, eventually


@pytest.fixture
async def bench(fleet_database: FleetDatabase) -> AsyncIterator[Bench]:
    async with messaging_bench(fleet_database, retention_index=True) as b:
        yield b


async def add_outbox_row(
    bench: Bench, *, created: timedelta, published: timedelta | None
) -> uuid.UUID:
    event_id = uuid.uuid4()
    async with bench.engine.begin() as conn:
        await conn.execute(
            sa.insert(bench.outbox.table).values(
                event_id=event_id,
                event_type="user.registered.v1",
                body={},
                created_at=sa.func.now() - created,
                published_at=None if published is None else sa.func.now() - published,
            )
        )
    return event_id


async def add_inbox_rows(bench: Bench, count: int, *, handled: timedelta) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with bench.engine.begin() as conn:
        await conn.execute(
            sa.insert(bench.inbox.table),
            [{"event_id": i, "event_type": "user.registered.v1"} for i in ids],
        )
        await conn.execute(
            sa.update(bench.inbox.table)
            .where(bench.inbox.table.c.event_id.in_(ids))
            .values(processed_at=sa.func.now() - handled)
        )
    return ids


async def remaining(bench: Bench, table: sa.Table, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with bench.engine.connect() as conn:
        rows = await conn.execute(sa.select(table.c.event_id).where(table.c.event_id.in_(ids)))
        return set(rows.scalars())


async def rows_in(bench: Bench, table: sa.Table) -> int:
    async with bench.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def purged(table: str) -> float:
    return REGISTRY.get_sample_value("retention_purged_rows_total", {"table": table}) or 0.0


def messaging_purger(bench: Bench, *, batch_size: int = 1000, **settings: object) -> Purger:
    config = bench.settings.model_copy(update=settings)
    return Purger(
        bench.engine,
        [outbox_expiry(bench.outbox, config), inbox_expiry(bench.inbox, config)],
        batch_size=batch_size,
    )


async def test_published_outbox_rows_go_after_their_retention_and_unpublished_ones_never(
    bench: Bench,
) -> None:
    day = timedelta(days=1)
    expired = await add_outbox_row(bench, created=9 * day, published=8 * day)
    # Kept for 7 days after publication, however old the event itself is.
    published_lately = await add_outbox_row(bench, created=30 * day, published=6 * day)
    never_published = await add_outbox_row(bench, created=400 * day, published=None)

    deleted = await messaging_purger(bench, outbox_retention_days=7).purge()

    assert deleted == {"outbox": 1, "inbox": 0}
    left = await remaining(bench, bench.outbox.table, [expired, published_lately, never_published])
    assert left == {published_lately, never_published}


async def test_inbox_rows_newer_than_the_retention_are_kept(bench: Bench) -> None:
    old = await add_inbox_rows(bench, 2, handled=timedelta(days=7, minutes=1))
    recent = await add_inbox_rows(bench, 2, handled=timedelta(days=6, hours=23))
    fresh = await add_inbox_rows(bench, 1, handled=timedelta(0))

    deleted = await messaging_purger(bench, inbox_retention_days=7).purge()

    assert deleted == {"outbox": 0, "inbox": 2}
    assert await remaining(bench, bench.inbox.table, old + recent + fresh) == {*recent, *fresh}


async def test_a_purge_larger_than_a_batch_takes_several_bounded_batches(bench: Bench) -> None:
    await add_inbox_rows(bench, 25, handled=timedelta(days=8))
    await add_inbox_rows(bench, 3, handled=timedelta(days=1))
    purger = messaging_purger(bench, batch_size=10)
    inbox = purger.expiries[1]
    counted = purged(inbox.name)

    batches = [await purger.purge_batch(inbox) for _ in range(4)]

    assert batches == [10, 10, 5, 0]
    assert await rows_in(bench, bench.inbox.table) == 3
    assert purged(inbox.name) - counted == 25


async def test_purge_drains_every_table_batch_by_batch(bench: Bench) -> None:
    await add_inbox_rows(bench, 23, handled=timedelta(days=8))
    for _ in range(12):
        await add_outbox_row(bench, created=timedelta(days=9), published=timedelta(days=8))

    deleted = await messaging_purger(bench, batch_size=5).purge()

    assert deleted == {"outbox": 12, "inbox": 23}
    assert await rows_in(bench, bench.inbox.table) == 0
    assert await rows_in(bench, bench.outbox.table) == 0


async def test_replicas_purging_at_once_delete_each_row_once(
    bench: Bench, fleet_database: FleetDatabase
) -> None:
    await add_inbox_rows(bench, 60, handled=timedelta(days=8))
    engines = [create_engine(fleet_database.url_for("orders")) for _ in range(3)]
    try:
        replicas = [
            Purger(e, [inbox_expiry(bench.inbox, bench.settings)], batch_size=7) for e in engines
        ]

        results = await asyncio.gather(*(replica.purge() for replica in replicas))
    finally:
        for engine in engines:
            await engine.dispose()

    assert sum(result["inbox"] for result in results) == 60
    assert await rows_in(bench, bench.inbox.table) == 0


async def test_rows_someone_holds_are_skipped_not_waited_for(bench: Bench) -> None:
    ids = await add_inbox_rows(bench, 5, handled=timedelta(days=8))
    purger = messaging_purger(bench, batch_size=2)
    table = bench.inbox.table
    async with bench.engine.connect() as holder:
        await holder.execute(sa.select(table).where(table.c.event_id == ids[0]).with_for_update())

        while_held = await asyncio.wait_for(purger.purge(), timeout=3)

        await holder.rollback()
    after = await purger.purge()

    assert while_held["inbox"] == 4
    assert after["inbox"] == 1
    assert await remaining(bench, table, ids) == set()


async def test_a_table_whose_purge_fails_does_not_stop_the_others(bench: Bench) -> None:
    await add_inbox_rows(bench, 3, handled=timedelta(days=8))
    # Declared but never created: every batch of it fails.
    missing = sa.Table(
        "missing",
        sa.MetaData(schema=bench.schema),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True)),
    )
    purger = Purger(
        bench.engine,
        [
            Expiry(missing, age=missing.c.created_at, keep=timedelta(days=1)),
            inbox_expiry(bench.inbox, bench.settings),
        ],
        batch_size=2,
    )

    deleted = await purger.purge()

    assert deleted == {"missing": 0, "inbox": 3}


def test_purges_refuse_an_outbox_or_inbox_without_its_retention_index() -> None:
    metadata = sa.MetaData(schema="unindexed")
    settings = BrokerSettings()

    with pytest.raises(ValueError, match="create_outbox_retention_index"):
        outbox_expiry(Outbox(metadata, source="/fleet/test"), settings)
    with pytest.raises(ValueError, match="create_inbox_retention_index"):
        inbox_expiry(Inbox(metadata), settings)


def test_the_inbox_must_outlive_the_retry_schedule() -> None:
    assert BrokerSettings().inbox_retention_days == 7

    with pytest.raises(ValidationError, match="INBOX_RETENTION_DAYS"):
        BrokerSettings(inbox_retention_days=1, consumer_retry_delays_ms=[3_600_000] * 24)
    with pytest.raises(ValidationError, match="inbox_retention_days"):
        BrokerSettings(inbox_retention_days=0)


async def test_a_purger_loop_purges_at_once_and_again_until_it_is_stopped(bench: Bench) -> None:
    await add_inbox_rows(bench, 3, handled=timedelta(days=8))
    loop = messaging_purger(bench).loop(every_seconds=0.05)
    await loop.stop()  # never started: nothing to stop

    loop.start()
    with pytest.raises(RuntimeError, match="running already"):
        loop.start()
    await eventually(lambda: _inbox_is_empty(bench))
    await add_inbox_rows(bench, 2, handled=timedelta(days=8))
    await eventually(lambda: _inbox_is_empty(bench))
    await loop.stop()
    assert not loop.running  # its task has ended: nothing purges any more

    await add_inbox_rows(bench, 2, handled=timedelta(days=8))
    loop.start()  # a stopped loop can be started again
    await eventually(lambda: _inbox_is_empty(bench))
    await loop.stop()


async def _inbox_is_empty(bench: Bench) -> bool:
    return await rows_in(bench, bench.inbox.table) == 0


def test_a_service_purger_covers_the_service_tables_then_its_outbox_and_inbox(
    bench: Bench,
) -> None:
    own = Expiry(bench.effects, age=sa.literal_column("now()"), keep=timedelta(days=1))
    settings = bench.settings.model_copy(update={"retention_batch_size": 250})

    everything = service_purger(
        bench.engine, settings, outbox=bench.outbox, inbox=bench.inbox, also=[own]
    )
    outbox_only = service_purger(bench.engine, settings, outbox=bench.outbox)

    assert [e.name for e in everything.expiries] == ["effects", "outbox", "inbox"]
    assert everything.batch_size == 250
    assert [e.name for e in outbox_only.expiries] == ["outbox"]
    with pytest.raises(ValueError, match="nothing to purge"):
        service_purger(bench.engine, settings)
    with pytest.raises(ValueError, match="create_inbox_retention_index"):
        service_purger(bench.engine, settings, inbox=Inbox(sa.MetaData(schema="unindexed")))
