"""The outbox relay publishes what producers committed: confirmed, in order, never lost."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from typing import Any

import pytest
import sqlalchemy as sa
from chassis_messaging_support import (
    Bench,
    collect,
    messaging_bench,
    tap,
    user_registered,
)
from prometheus_client import REGISTRY

from chassis.db import UnitOfWork
from chassis.messaging.handlers import Handlers
from chassis.messaging.runtime import Messaging
from contracts.events import UserRegisteredV1
from fleetctl.testing import FleetDatabase, eventually


@pytest.fixture
async def bench(fleet_database: FleetDatabase) -> Any:
    async with messaging_bench(fleet_database) as b:
        yield b


async def test_committed_event_is_published_promptly_and_marked(bench: Bench) -> None:
    messaging = Messaging(bench.settings, service="test")
    await messaging.connect()
    try:
        async with tap(bench.settings, "user.registered.v1") as queue:
            await messaging.start_relay(bench.outbox)
            event_id = await bench.stage(user_registered("a@example.com"))
            # Polling is set to 5 s: arriving well before that proves NOTIFY woke the relay.
            [message] = await collect(queue, 1, timeout=3)
        body = json.loads(message.body)
        assert body["id"] == event_id == message.message_id
        assert body["type"] == "user.registered.v1"
        assert body["data"]["email"] == "a@example.com"
        await eventually(lambda: _zero(bench.unpublished()))
    finally:
        await messaging.stop()


async def _zero(value: Awaitable[int]) -> bool:
    return await value == 0


async def test_rolled_back_transaction_publishes_nothing(bench: Bench) -> None:
    with pytest.raises(RuntimeError):  # noqa: PT012 - the failure must happen inside the block
        async with UnitOfWork(bench.sessions) as uow:
            await bench.outbox.add(uow.session, user_registered())
            raise RuntimeError
    assert await bench.unpublished() == 0


async def test_events_of_one_subject_stay_in_order_across_racing_relays(bench: Bench) -> None:
    subjects = [str(uuid.uuid4()) for _ in range(5)]
    staged: dict[str, list[str]] = {s: [] for s in subjects}
    for round_ in range(6):
        for subject in subjects:
            staged[subject].append(
                await bench.stage(user_registered(f"{round_}@x.io"), subject=subject)
            )
    relays = [Messaging(bench.settings, service="test") for _ in range(3)]
    async with tap(bench.settings) as queue:
        for relay in relays:
            await relay.connect()
            await relay.start_relay(bench.outbox)
        try:
            messages = await collect(queue, 30, timeout=15)
        finally:
            for relay in relays:
                await relay.stop()
    seen: dict[str, list[str]] = {s: [] for s in subjects}
    for message in messages:
        body = json.loads(message.body)
        seen[body["subject"]].append(body["id"])
    assert seen == staged


async def test_relay_crash_after_publish_republishes_and_nothing_is_lost(bench: Bench) -> None:
    event_id = await bench.stage(user_registered())
    crashing = Messaging(bench.settings, service="test")
    await crashing.connect()
    async with tap(bench.settings) as queue:
        relay = await crashing.start_relay(bench.outbox)
        crashed = asyncio.Event()

        async def crash(event_id: Any) -> None:
            crashed.set()
            # The relay dies between the broker's confirm and the commit of "published".
            raise asyncio.CancelledError

        relay.after_publish = crash  # type: ignore[method-assign]
        await asyncio.wait_for(crashed.wait(), 5)
        await crashing.stop()
        assert await bench.unpublished() == 1  # never marked

        restarted = Messaging(bench.settings, service="test")
        await restarted.connect()
        await restarted.start_relay(bench.outbox)
        try:
            messages = await collect(queue, 2, timeout=10)
            # Marked once the broker confirmed it (the message can arrive before that commit).
            await eventually(lambda: _zero(bench.unpublished()))
        finally:
            await restarted.stop()
    assert [m.message_id for m in messages] == [event_id, event_id]


async def test_duplicate_from_a_relay_crash_is_absorbed_by_the_consumer_inbox(
    bench: Bench,
) -> None:
    effects: list[str] = []

    async def handler(uow: UnitOfWork, event: Any, payload: Any) -> None:
        await uow.session.execute(sa.insert(bench.effects).values(event_id=str(event.id)))
        effects.append(str(event.id))

    consumer = Messaging(bench.settings, service="inbox-test")
    await consumer.connect()
    await consumer.start_consumer(
        bench.inbox, bench.sessions, Handlers().add(UserRegisteredV1, handler)
    )
    duplicates = (
        REGISTRY.get_sample_value(
            "events_consumed_total", {"event_type": "user.registered.v1", "outcome": "duplicate"}
        )
        or 0.0
    )
    try:
        event_id = await bench.stage(user_registered())
        crashing = Messaging(bench.settings, service="test")
        await crashing.connect()
        relay = await crashing.start_relay(bench.outbox)
        crashed = asyncio.Event()

        async def crash(event_id: Any) -> None:
            crashed.set()
            raise asyncio.CancelledError

        relay.after_publish = crash  # type: ignore[method-assign]
        await asyncio.wait_for(crashed.wait(), 5)
        await crashing.stop()
        restarted = Messaging(bench.settings, service="test")
        await restarted.connect()
        await restarted.start_relay(bench.outbox)
        try:
            await eventually(lambda: _duplicates_above(duplicates))
        finally:
            await restarted.stop()
        assert effects == [event_id]
        assert await bench.effects_count() == 1
    finally:
        await consumer.stop()


async def _duplicates_above(before: float) -> bool:
    now = REGISTRY.get_sample_value(
        "events_consumed_total", {"event_type": "user.registered.v1", "outcome": "duplicate"}
    )
    return (now or 0.0) > before
