"""The idempotent consumer: effects once per event, retries with delay, dead letters, replay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from chassis_messaging_support import Bench, messaging_bench

from chassis.db import UnitOfWork
from chassis.messaging.dlq import list_dead_letters, replay_dead_letters
from chassis.messaging.handlers import Handlers
from chassis.messaging.runtime import Messaging
from chassis.messaging.topology import Names, declare_consumer_queues
from contracts.events import CloudEvent, UserRegisteredV1, new_event
from fleetctl.testing import FleetDatabase, eventually


class Harness:
    """A consumer of `user.registered.v1` whose handler records an effect row, and can fail."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.failures_left = 0
        self.calls = 0
        self.messaging = Messaging(bench.settings, service="test")
        self.publisher: aio_pika.abc.AbstractRobustConnection | None = None

    async def handler(self, uow: UnitOfWork, event: CloudEvent, payload: Any) -> None:
        self.calls += 1
        await uow.session.execute(sa.insert(self.bench.effects).values(event_id=str(event.id)))
        # The handler's own events name the consumed event as their cause.
        await self.bench.outbox.add(uow.session, payload, subject="follow-up")
        if self.failures_left > 0:
            self.failures_left -= 1
            msg = "transient failure"
            raise ConnectionError(msg)

    async def start(self) -> None:
        await self.messaging.connect()
        await self.messaging.start_consumer(
            self.bench.inbox, self.bench.sessions, Handlers().add(UserRegisteredV1, self.handler)
        )
        self.publisher = await aio_pika.connect_robust(self.bench.settings.amqp_url)

    async def send(self, body: bytes, routing_key: str = "user.registered.v1") -> None:
        assert self.publisher is not None
        channel = await self.publisher.channel()
        exchange = await channel.get_exchange(self.bench.settings.amqp_exchange)
        await exchange.publish(aio_pika.Message(body, message_id=None), routing_key=routing_key)
        await channel.close()

    async def stop(self) -> None:
        await self.messaging.stop()
        if self.publisher is not None:
            await self.publisher.close()


@pytest.fixture
async def harness(fleet_database: FleetDatabase) -> AsyncIterator[Harness]:
    async with messaging_bench(fleet_database) as bench:
        h = Harness(bench)
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


def _event(**kw: Any) -> CloudEvent:
    return new_event(
        UserRegisteredV1(user_id=uuid.uuid4(), email="c@example.com"),
        source="/fleet/test",
        correlation_id=kw.get("correlation_id"),
    )


async def _effects(h: Harness, expected: int) -> bool:
    return await h.bench.effects_count() == expected


async def test_the_same_event_delivered_twice_changes_nothing_the_second_time(
    harness: Harness,
) -> None:
    event = _event()
    await harness.send(event.to_json())
    await harness.send(event.to_json())
    second = _event()
    await harness.send(second.to_json())  # a later, different event proves the duplicate passed
    await eventually(lambda: _effects(harness, 2))
    await eventually(lambda: _calls(harness, 2))
    assert await harness.bench.effects_count() == 2


async def _calls(h: Harness, expected: int) -> bool:
    return h.calls == expected


async def test_transient_failures_are_retried_until_the_effect_happens_once(
    harness: Harness,
) -> None:
    harness.failures_left = 2
    await harness.send(_event().to_json())
    await eventually(lambda: _effects(harness, 1))
    assert harness.calls == 3
    assert await list_dead_letters(harness.bench.settings, "test") == []


async def test_poison_messages_go_to_the_dlq_at_once_and_the_consumer_keeps_going(
    harness: Harness,
) -> None:
    await harness.send(b"{not json")
    unknown = _event().model_copy(update={"type": "user.exploded.v9"})
    await harness.send(unknown.to_json())
    await harness.send(_event().to_json())
    await eventually(lambda: _effects(harness, 1))
    letters = await _letters(harness, 2)
    assert harness.calls == 1  # the poison never reached the handler, nor was it retried
    assert sorted(letter.error.split(":")[0] for letter in letters) == [
        "InvalidEventError",
        "UnknownEventError",
    ]


async def _letters(h: Harness, count: int) -> list[Any]:
    letters: list[Any] = []

    async def enough() -> bool:
        letters[:] = await list_dead_letters(h.bench.settings, "test")
        return len(letters) >= count

    await eventually(enough)
    return letters


async def test_exhausted_retries_dead_letter_with_reason_and_replay_redrives(
    harness: Harness,
) -> None:
    harness.failures_left = 100
    event = _event()
    await harness.send(event.to_json())
    [letter] = await _letters(harness, 1)
    assert harness.calls == 3  # first try + two retries (the configured budget)
    assert letter.error == "ConnectionError: transient failure"
    assert await harness.bench.effects_count() == 0

    harness.failures_left = 0  # the bug is fixed; re-drive the dead letter
    replay = await replay_dead_letters(harness.bench.settings, "test", message_id=None)
    assert (len(replay.replayed), replay.held_back) == (1, [])
    await eventually(lambda: _effects(harness, 1))
    assert await list_dead_letters(harness.bench.settings, "test") == []


async def test_events_staged_by_a_handler_carry_correlation_and_causation(
    harness: Harness,
) -> None:
    event = _event(correlation_id="order-journey-1")
    await harness.send(event.to_json())
    await eventually(lambda: _effects(harness, 1))
    table = harness.bench.outbox.table
    async with harness.bench.engine.connect() as conn:
        bodies = (await conn.execute(sa.select(table.c.body))).scalars().all()
    assert [b["causationid"] for b in bodies] == [str(event.id)]
    assert [b["correlationid"] for b in bodies] == ["order-journey-1"]


async def _deliveries_left_unsettled(bench: Bench, times: int) -> None:
    """As if `times` consumers had died holding the queue's next message: each delivery ends
    without an ack, and the broker returns the message to the queue."""
    names = Names.of(bench.settings, "test")
    connection = await aio_pika.connect_robust(bench.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(names.queue, passive=True)
        for _ in range(times):
            message = await queue.get(timeout=5, fail=True)
            assert message is not None
            await message.nack(requeue=True)
    finally:
        await connection.close()


@pytest.mark.parametrize(("unsettled", "handled"), [(9, True), (10, False)])
async def test_a_message_whose_deliveries_keep_ending_unsettled_is_dead_lettered_at_the_limit(
    fleet_database: FleetDatabase, unsettled: int, handled: bool
) -> None:
    async with messaging_bench(fleet_database) as bench:
        names = Names.of(bench.settings, "test")
        connection = await aio_pika.connect_robust(bench.settings.amqp_url)
        try:
            await declare_consumer_queues(
                await connection.channel(), bench.settings, names, ["user.registered.v1"]
            )
        finally:
            await connection.close()
        h = Harness(bench)
        h.publisher = await aio_pika.connect_robust(bench.settings.amqp_url)
        event = _event()
        await h.send(event.to_json())
        await _deliveries_left_unsettled(bench, unsettled)
        await h.start()
        try:
            if handled:
                await eventually(lambda: _effects(h, 1))
                assert await list_dead_letters(bench.settings, "test") == []
            else:
                letters: list[Any] = []

                async def dead_lettered() -> bool:
                    letters[:] = await list_dead_letters(bench.settings, "test")
                    return len(letters) == 1

                await eventually(dead_lettered)
                assert "delivered 11 times" in letters[0].as_dict()["error"]
                assert h.calls == 0
        finally:
            await h.stop()
