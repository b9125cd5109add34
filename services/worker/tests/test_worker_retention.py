"""Retention of the worker's rows: settled e-mails and webhook deliveries go after
`DELIVERY_RETENTION_DAYS`, pending ones (waiting or in flight) never, handled-event inbox rows
after `INBOX_RETENTION_DAYS`; in bounded batches, from the worker's own background loop. Ages
are set in SQL (`now() - interval`), never waited for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError
from pydantic import ValidationError
from worker_test_support import WorkerDb, sample

from chassis.retention import Purger
from chassis.storage import ObjectStore, object_store
from fleetctl.testing import eventually
from worker.models import Export, Notification, WebhookDelivery, WebhookSubscription, inbox
from worker.retention import purger as worker_purger

MAILS = Notification.__table__
DELIVERIES = WebhookDelivery.__table__
DAY = timedelta(days=1)


@dataclass
class Rows:
    """Rows a test inserts straight into the worker's tables; deleted again afterwards, so no
    sender or dispatcher of a later test ever picks them up."""

    db: WorkerDb
    subscription_id: uuid.UUID = field(default_factory=uuid.uuid4)
    mails: list[uuid.UUID] = field(default_factory=list)
    deliveries: list[uuid.UUID] = field(default_factory=list)
    events: list[uuid.UUID] = field(default_factory=list)

    async def subscribe(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(WebhookSubscription).values(
                    id=self.subscription_id,
                    owner_id=str(uuid.uuid4()),
                    all_users=False,
                    url="https://receiver.example/hooks",
                    events=[],  # matches no event: nothing is ever fanned out to it
                    secret="s",
                )
            )

    async def mail(
        self, status: str, *, age: timedelta, next_attempt_in: timedelta = DAY
    ) -> uuid.UUID:
        mail_id = uuid.uuid4()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(Notification).values(
                    id=mail_id,
                    event_id=uuid.uuid4(),
                    kind="welcome",
                    recipient="someone@example.com",
                    subject="s",
                    body="b",
                    status=status,
                    created_at=sa.func.now() - age,
                    next_attempt_at=sa.func.now() + next_attempt_in,
                )
            )
        self.mails.append(mail_id)
        return mail_id

    async def delivery(
        self, status: str, *, age: timedelta, next_attempt_in: timedelta = DAY
    ) -> uuid.UUID:
        delivery_id = uuid.uuid4()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(WebhookDelivery).values(
                    id=delivery_id,
                    subscription_id=self.subscription_id,
                    event_id=uuid.uuid4(),
                    event_type="order.confirmed.v1",
                    body="{}",
                    status=status,
                    created_at=sa.func.now() - age,
                    next_attempt_at=sa.func.now() + next_attempt_in,
                )
            )
        self.deliveries.append(delivery_id)
        return delivery_id

    async def handled(self, *, age: timedelta) -> uuid.UUID:
        event_id = uuid.uuid4()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(inbox.table).values(
                    event_id=event_id,
                    event_type="user.registered.v1",
                    processed_at=sa.func.now() - age,
                )
            )
        self.events.append(event_id)
        return event_id

    async def left(self) -> set[uuid.UUID]:
        async with self.db.engine.connect() as conn:
            found = set()
            for column, ids in (
                (MAILS.c.id, self.mails),
                (DELIVERIES.c.id, self.deliveries),
                (inbox.table.c.event_id, self.events),
            ):
                query = sa.select(column).where(column.in_(ids))
                found |= set((await conn.execute(query)).scalars())
            return found

    async def remove(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(sa.delete(Notification).where(MAILS.c.id.in_(self.mails)))
            await conn.execute(
                sa.delete(WebhookSubscription).where(WebhookSubscription.id == self.subscription_id)
            )
            await conn.execute(
                sa.delete(inbox.table).where(inbox.table.c.event_id.in_(self.events))
            )


@pytest.fixture
async def rows(db: WorkerDb) -> AsyncIterator[Rows]:
    inserted = Rows(db)
    await inserted.subscribe()
    try:
        yield inserted
    finally:
        await inserted.remove()


def retention(db: WorkerDb, make_settings: Any, **settings: Any) -> Purger:
    """The purger the worker runs (see `worker.main`), with some settings changed."""
    return worker_purger(db.engine, make_settings(**settings))


async def test_settled_mails_and_deliveries_go_after_the_retention_and_recent_ones_stay(
    rows: Rows, db: WorkerDb, make_settings: Any
) -> None:
    expired = [
        await rows.mail("sent", age=31 * DAY),
        await rows.mail("failed", age=31 * DAY),
        await rows.delivery("delivered", age=31 * DAY),
        await rows.delivery("failed", age=31 * DAY),
    ]
    recent = [
        await rows.mail("sent", age=29 * DAY),
        await rows.delivery("failed", age=29 * DAY),
    ]

    deleted = await retention(db, make_settings).purge()

    assert deleted["notifications"] >= 2
    assert deleted["webhook_deliveries"] >= 2
    assert await rows.left() == set(recent)
    assert not set(expired) & await rows.left()


async def test_pending_mails_and_deliveries_are_never_purged_however_old(
    rows: Rows, db: WorkerDb, make_settings: Any
) -> None:
    pending = [
        # Waiting for a retry, and leased to a sender right now (in flight).
        await rows.mail("pending", age=400 * DAY, next_attempt_in=DAY),
        await rows.mail("pending", age=400 * DAY, next_attempt_in=timedelta(minutes=5)),
        await rows.delivery("pending", age=400 * DAY, next_attempt_in=DAY),
        await rows.delivery("pending", age=400 * DAY, next_attempt_in=timedelta(minutes=5)),
    ]

    await retention(db, make_settings, delivery_retention_days=1).purge()

    assert await rows.left() == set(pending)


async def test_inbox_rows_newer_than_the_retention_are_kept(
    rows: Rows, db: WorkerDb, make_settings: Any
) -> None:
    await rows.handled(age=7 * DAY + timedelta(minutes=1))
    recent = await rows.handled(age=6 * DAY + timedelta(hours=23))

    deleted = await retention(db, make_settings, inbox_retention_days=7).purge()

    assert deleted["inbox"] >= 1
    assert await rows.left() == {recent}


async def test_a_purge_of_many_deliveries_goes_in_bounded_batches(
    rows: Rows, db: WorkerDb, make_settings: Any
) -> None:
    for _ in range(25):
        await rows.delivery("delivered", age=40 * DAY)
    purger = retention(db, make_settings, retention_batch_size=10)
    [deliveries] = [e for e in purger.expiries if e.name == "webhook_deliveries"]
    counted = sample("retention_purged_rows_total", {"table": "webhook_deliveries"})

    batches = [await purger.purge_batch(deliveries)]
    while batches[-1] == 10:
        batches.append(await purger.purge_batch(deliveries))

    assert all(batch <= 10 for batch in batches), batches
    assert len(batches) >= 3, batches
    assert await rows.left() == set()
    purged = sample("retention_purged_rows_total", {"table": "webhook_deliveries"}) - counted
    assert purged == sum(batches) >= 25


async def test_the_worker_purges_in_its_background_loop(rows: Rows, start_worker: Any) -> None:
    await rows.mail("sent", age=45 * DAY)
    await rows.delivery("delivered", age=45 * DAY)
    await rows.handled(age=45 * DAY)

    # Each replica purges once at start, then every RETENTION_SCAN_SECONDS.
    async with start_worker():

        async def purged() -> bool:
            return await rows.left() == set()

        await eventually(purged)


def test_the_retention_is_at_least_a_day(make_settings: Any) -> None:
    assert make_settings().delivery_retention_days == 30

    with pytest.raises(ValidationError, match="delivery_retention_days"):
        make_settings(delivery_retention_days=0)


async def _export(
    db: WorkerDb, store: ObjectStore, *, status: str, age: timedelta
) -> tuple[uuid.UUID, str]:
    """An export row of `status`, asked for `age` ago, and its file in the bucket."""
    export_id = uuid.uuid4()
    key = f"exports/{export_id}.csv"
    await store.put(key, b"order_id\n", content_type="text/csv")
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(Export).values(
                id=export_id,
                requested_by=uuid.uuid4(),
                user_id=None,
                format="csv",
                status=status,
                object_key=key,
                created_at=sa.func.now() - age,
            )
        )
    return export_id, key


async def _exports_left(db: WorkerDb, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(Export.id).where(Export.id.in_(ids)))
        return set(rows.scalars())


async def test_finished_exports_go_after_their_retention_with_their_files(
    db: WorkerDb, make_settings: Any, s3_settings: dict[str, Any]
) -> None:
    settings = make_settings(**s3_settings)
    async with object_store(settings) as store:
        await store.ensure_bucket()
        old_ready = await _export(db, store, status="ready", age=8 * DAY)
        old_failed = await _export(db, store, status="failed", age=8 * DAY)
        old_pending = await _export(db, store, status="pending", age=30 * DAY)
        recent = await _export(db, store, status="ready", age=6 * DAY)
        everything = [old_ready, old_failed, old_pending, recent]

        deleted = await worker_purger(db.engine, settings, store).purge()

        kept = {recent[0], old_pending[0]}
        assert deleted["exports"] >= 2
        assert await _exports_left(db, [export_id for export_id, _ in everything]) == kept
        for export_id, key in everything:
            try:
                await store.read(key)
                present = True
            except ClientError:
                present = False
            assert present is (export_id in kept), key
        async with db.engine.begin() as conn:
            await conn.execute(sa.delete(Export).where(Export.id.in_(kept)))


async def test_an_export_whose_file_cannot_be_deleted_stays_for_the_next_pass(
    db: WorkerDb, make_settings: Any, s3_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(**s3_settings)
    async with object_store(settings) as store:
        await store.ensure_bucket()
        export_id, _ = await _export(db, store, status="ready", age=8 * DAY)

        async def bucket_down(keys: Sequence[str]) -> None:
            raise ConnectionError("the bucket does not answer")

        monkeypatch.setattr(store, "delete", bucket_down)
        deleted = await worker_purger(db.engine, settings, store).purge()

        assert deleted["exports"] == 0
        assert await _exports_left(db, [export_id]) == {export_id}
        async with db.engine.begin() as conn:
            await conn.execute(sa.delete(Export).where(Export.id == export_id))
