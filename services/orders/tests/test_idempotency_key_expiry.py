"""Idempotency keys live for `IDEMPOTENCY_KEY_TTL_HOURS`: replayed within it, a new request
after it (purged or not yet), and purged in bounded batches. A key's age is set in SQL
(`created_at = now() - interval`), never waited for."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from orders_catalog_stub import CatalogStub
from orders_test_support import OrdersDb, sample
from pydantic import ValidationError

from fleetctl.testing import eventually
from orders.models import IdempotencyKey, Order
from orders.retention import idempotency_key_expiry, purger

KEYS = IdempotencyKey.__table__
HOUR = timedelta(hours=1)


def _body(catalog: CatalogStub) -> dict[str, Any]:
    return {"items": [{"product_id": catalog.add(), "quantity": 1}]}


async def _age(db: OrdersDb, user_id: str, key: str, age: timedelta) -> None:
    async with db.engine.begin() as conn:
        updated = await conn.execute(
            sa.update(IdempotencyKey)
            .where(KEYS.c.user_id == uuid.UUID(user_id), KEYS.c.key == key)
            .values(created_at=sa.func.now() - age)
        )
    assert updated.rowcount == 1


async def _stored(db: OrdersDb, user_id: str, key: str) -> bool:
    query = sa.select(KEYS.c.key).where(KEYS.c.user_id == uuid.UUID(user_id), KEYS.c.key == key)
    async with db.engine.connect() as conn:
        return (await conn.execute(query)).first() is not None


async def test_a_key_is_replayed_until_its_ttl_runs_out(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog), customer.with_key("almost-a-day-old")
    first = await client.post("/v1/orders", json=body, headers=headers)
    await _age(db, customer.id, "almost-a-day-old", 23 * HOUR + timedelta(minutes=59))

    again = await client.post("/v1/orders", json=body, headers=headers)

    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await db.orders_of(customer.id)) == 1


async def test_a_retry_after_the_ttl_is_a_new_order_even_before_the_purge(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog), customer.with_key("a-day-old")
    first = await client.post("/v1/orders", json=body, headers=headers)
    await _age(db, customer.id, "a-day-old", 24 * HOUR + timedelta(minutes=1))

    again = await client.post("/v1/orders", json=body, headers=headers)
    replayed = await client.post("/v1/orders", json=body, headers=headers)

    assert again.status_code == 202
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    # The key now stands for the new order, with a TTL of its own.
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == again.json()["id"]
    assert len(await db.orders_of(customer.id)) == 2


async def test_another_body_with_an_expired_key_is_a_new_order_not_a_conflict(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    headers = customer.with_key("reused-after-a-day")
    await client.post("/v1/orders", json=_body(catalog), headers=headers)
    await _age(db, customer.id, "reused-after-a-day", 25 * HOUR)

    other = await client.post("/v1/orders", json=_body(catalog), headers=headers)

    assert other.status_code == 202
    assert len(await db.orders_of(customer.id)) == 2


async def test_concurrent_retries_of_an_expired_key_place_exactly_one_new_order(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog), customer.with_key("expired-and-raced")
    first = await client.post("/v1/orders", json=body, headers=headers)
    await _age(db, customer.id, "expired-and-raced", 25 * HOUR)

    responses = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers=headers) for _ in range(10))
    )

    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert first.json()["id"] not in ids
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert len(await db.orders_of(customer.id)) == 2


async def test_expired_keys_are_purged_and_fresh_ones_kept(
    client: httpx.AsyncClient,
    customer: Any,
    catalog: CatalogStub,
    db: OrdersDb,
    make_settings: Any,
) -> None:
    for key in ("purged", "kept"):
        await client.post("/v1/orders", json=_body(catalog), headers=customer.with_key(key))
    await _age(db, customer.id, "purged", 24 * HOUR + timedelta(seconds=1))
    await _age(db, customer.id, "kept", 23 * HOUR)

    deleted = await purger(db.engine, make_settings()).purge()

    assert deleted["idempotency_keys"] >= 1
    assert not await _stored(db, customer.id, "purged")
    assert await _stored(db, customer.id, "kept")
    # Only the keys go: both orders stay.
    assert len(await db.orders_of(customer.id)) == 2


async def test_a_replay_after_the_purge_places_a_new_order(
    client: httpx.AsyncClient,
    customer: Any,
    catalog: CatalogStub,
    db: OrdersDb,
    make_settings: Any,
) -> None:
    body, headers = _body(catalog), customer.with_key("replayed-after-purge")
    first = await client.post("/v1/orders", json=body, headers=headers)
    await _age(db, customer.id, "replayed-after-purge", 48 * HOUR)
    await purger(db.engine, make_settings()).purge()
    assert not await _stored(db, customer.id, "replayed-after-purge")

    again = await client.post("/v1/orders", json=body, headers=headers)

    assert again.status_code == 202
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await _stored(db, customer.id, "replayed-after-purge")
    assert len(await db.orders_of(customer.id)) == 2


async def test_the_ttl_is_configurable(
    start_app: Any, customer: Any, catalog: CatalogStub, db: OrdersDb, make_settings: Any
) -> None:
    body, headers = _body(catalog), customer.with_key("an-hour-old")
    async with start_app(idempotency_key_ttl_hours=1) as client:
        first = await client.post("/v1/orders", json=body, headers=headers)
        await _age(db, customer.id, "an-hour-old", HOUR + timedelta(seconds=1))
        again = await client.post("/v1/orders", json=body, headers=headers)
    assert again.json()["id"] != first.json()["id"]

    # The key now stands for the second order; once it is an hour old, only a purge with the
    # same TTL removes it.
    await _age(db, customer.id, "an-hour-old", HOUR + timedelta(seconds=1))
    await purger(db.engine, make_settings()).purge()
    assert await _stored(db, customer.id, "an-hour-old")
    await purger(db.engine, make_settings(idempotency_key_ttl_hours=1)).purge()
    assert not await _stored(db, customer.id, "an-hour-old")

    with pytest.raises(ValidationError, match="idempotency_key_ttl_hours"):
        make_settings(idempotency_key_ttl_hours=0)


async def test_a_purge_of_many_keys_goes_in_bounded_batches(
    customer: Any, db: OrdersDb, make_settings: Any
) -> None:
    user_id, keys = uuid.UUID(customer.id), [f"bulk-{i}" for i in range(25)]
    async with db.engine.begin() as conn:
        order_ids = [uuid.uuid4() for _ in keys]
        await conn.execute(
            sa.insert(Order),
            [
                {
                    "id": o,
                    "user_id": user_id,
                    "status": "confirmed",
                    "total_cents": 1,
                    "currency": "EUR",
                }
                for o in order_ids
            ],
        )
        await conn.execute(
            sa.insert(IdempotencyKey),
            [
                {
                    "user_id": user_id,
                    "key": key,
                    "request_hash": "h",
                    "order_id": order_id,
                    "response_status": 202,
                    "response_body": {},
                }
                for key, order_id in zip(keys, order_ids, strict=True)
            ],
        )
    for key in keys:
        await _age(db, customer.id, key, 30 * HOUR)
    settings = make_settings(retention_batch_size=10)
    bulk = purger(db.engine, settings)
    expiry = idempotency_key_expiry(settings)
    counted = sample("retention_purged_rows_total", {"table": "idempotency_keys"})

    batches = [await bulk.purge_batch(expiry)]
    while batches[-1] == 10:
        batches.append(await bulk.purge_batch(expiry))

    assert all(batch <= 10 for batch in batches), batches
    assert len(batches) >= 3, batches
    assert sum(batches) >= 25
    assert [key for key in keys if await _stored(db, customer.id, key)] == []
    purged = sample("retention_purged_rows_total", {"table": "idempotency_keys"}) - counted
    assert purged == sum(batches)


async def test_the_service_purges_expired_keys_by_itself(
    client: httpx.AsyncClient,
    start_app: Any,
    customer: Any,
    catalog: CatalogStub,
    db: OrdersDb,
) -> None:
    await client.post("/v1/orders", json=_body(catalog), headers=customer.with_key("left-over"))
    await _age(db, customer.id, "left-over", 25 * HOUR)

    # Each replica purges once at start, then every RETENTION_SCAN_SECONDS.
    async with start_app():

        async def purged() -> bool:
            return not await _stored(db, customer.id, "left-over")

        await eventually(purged)
