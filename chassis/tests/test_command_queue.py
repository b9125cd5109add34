"""The command queue: a command staged in the outbox reaches one handler, once, through the
command exchange, with the consumer's retries and dead letters, and only if its sender commits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from chassis_messaging_support import Bench, collect, messaging_bench, tap, user_registered

from chassis.db import UnitOfWork
from chassis.messaging.dlq import list_dead_letters, replay_dead_letters
from chassis.messaging.handlers import Handlers, PermanentError
from chassis.messaging.runtime import Messaging
from chassis.messaging.topology import Names
from contracts.commands import ReconciliationTrigger, RunReconciliationV1
from contracts.events import CloudEvent, UserRegisteredV1
from fleetctl.testing import FleetDatabase, eventually

# The service the test commands are addressed to: RunReconciliationV1 is handled by it.
HANDLER = RunReconciliationV1.handled_by


def _command() -> RunReconciliationV1:
    return RunReconciliationV1(reconciliation_id=uuid.uuid4(), trigger=ReconciliationTrigger.ADMIN)


@dataclass
class Replica:
    """One replica of the handling service: its command consumer records an effect per
    command, and fails while told to."""

    bench: Bench
    messaging: Messaging
    handled: list[str] = field(default_factory=list)
    failures_left: int = 0
    permanent: bool = False

    async def handle(
        self, uow: UnitOfWork, event: CloudEvent, payload: RunReconciliationV1
    ) -> None:
        self.handled.append(str(payload.reconciliation_id))
        await uow.session.execute(sa.insert(self.bench.effects).values(event_id=str(event.id)))
        if self.permanent:
            msg = "this command can never succeed"
            raise PermanentError(msg)
        if self.failures_left > 0:
            self.failures_left -= 1
            msg = "transient failure"
            raise ConnectionError(msg)

    async def start(self) -> None:
        await self.messaging.connect()
        await self.messaging.start_command_consumer(
            self.bench.inbox,
            self.bench.sessions,
            Handlers.for_commands().add(RunReconciliationV1, self.handle),
        )


@dataclass
class Fleet:
    bench: Bench
    sender: Messaging
    replicas: list[Replica]

    async def start_replica(self) -> Replica:
        replica = Replica(self.bench, Messaging(self.bench.settings, service=HANDLER))
        await replica.start()
        self.replicas.append(replica)
        return replica

    def handled(self) -> list[str]:
        return [command for replica in self.replicas for command in replica.handled]


@pytest.fixture
async def fleet(fleet_database: FleetDatabase) -> AsyncIterator[Fleet]:
    """A sender whose relay publishes the bench's outbox (events and commands); replicas of the
    handling service are started by each test."""
    async with messaging_bench(fleet_database) as bench:
        bench.settings = bench.settings.model_copy(update={"consumer_retry_delays_ms": [50, 100]})
        sender = Messaging(bench.settings, service="sender")
        fleet = Fleet(bench, sender, [])
        try:
            await sender.connect()
            await sender.start_relay(bench.outbox, sends=[RunReconciliationV1])
            yield fleet
        finally:
            for replica in fleet.replicas:
                await replica.messaging.stop()
            await sender.stop()


async def _effects(bench: Bench, expected: int) -> bool:
    return await bench.effects_count() == expected


async def test_a_command_sent_before_its_handler_ever_ran_waits_in_its_queue_for_it(
    fleet: Fleet,
) -> None:
    command = _command()
    await fleet.bench.stage(command, subject="reconciliation")
    await eventually(lambda: _unpublished(fleet.bench, 0))

    await fleet.start_replica()

    await eventually(lambda: _effects(fleet.bench, 1))
    assert fleet.handled() == [str(command.reconciliation_id)]


async def _unpublished(bench: Bench, expected: int) -> bool:
    return await bench.unpublished() == expected


async def test_competing_replicas_handle_each_command_exactly_once(fleet: Fleet) -> None:
    await fleet.start_replica()
    await fleet.start_replica()
    commands = [_command() for _ in range(12)]
    for command in commands:
        await fleet.bench.stage(command)

    await eventually(lambda: _effects(fleet.bench, len(commands)))
    assert sorted(fleet.handled()) == sorted(str(c.reconciliation_id) for c in commands)


async def test_a_command_staged_in_a_transaction_that_rolls_back_is_never_sent(
    fleet: Fleet,
) -> None:
    await fleet.start_replica()
    async with UnitOfWork(fleet.bench.sessions) as uow:
        await fleet.bench.outbox.add(uow.session, _command())
        # left without a commit: the unit of work rolls back
    sent = _command()
    await fleet.bench.stage(sent)  # a later command proves the first one had its chance

    await eventually(lambda: _effects(fleet.bench, 1))
    assert fleet.handled() == [str(sent.reconciliation_id)]


async def test_a_redelivered_command_changes_nothing(fleet: Fleet) -> None:
    replica = await fleet.start_replica()
    first = _command()
    await fleet.bench.stage(first)
    await eventually(lambda: _effects(fleet.bench, 1))
    [row] = await _outbox_bodies(fleet.bench)

    await _publish_to_command_queue(fleet.bench, row)  # the broker delivers it once more
    later = _command()
    await fleet.bench.stage(later)

    await eventually(lambda: _effects(fleet.bench, 2))
    assert replica.handled == [str(first.reconciliation_id), str(later.reconciliation_id)]


async def _outbox_bodies(bench: Bench) -> list[str]:
    table = bench.outbox.table
    async with bench.engine.connect() as conn:
        rows = await conn.execute(sa.select(sa.cast(table.c.body, sa.Text)).order_by(table.c.id))
        return [str(body) for body in rows.scalars()]


async def _publish_to_command_queue(bench: Bench, body: str) -> None:
    connection = await aio_pika.connect_robust(bench.settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body.encode()),
            routing_key=Names.commands_of(bench.settings, HANDLER).queue,
        )
    finally:
        await connection.close()


async def test_a_failing_command_is_retried_through_the_command_retry_queues(
    fleet: Fleet,
) -> None:
    replica = await fleet.start_replica()
    replica.failures_left = 2
    await fleet.bench.stage(_command())

    await eventually(lambda: _effects(fleet.bench, 1))
    assert len(replica.handled) == 3
    assert await list_dead_letters(fleet.bench.settings, HANDLER) == []


async def test_a_poison_command_is_dead_lettered_and_a_replay_sends_it_back_to_the_command_queue(
    fleet: Fleet,
) -> None:
    replica = await fleet.start_replica()
    replica.permanent = True
    command = _command()
    await fleet.bench.stage(command)

    letters: list[Any] = []

    async def dead_lettered() -> bool:
        letters[:] = await list_dead_letters(fleet.bench.settings, HANDLER)
        return len(letters) == 1

    await eventually(dead_lettered)
    [letter] = letters
    assert letter.event_type == RunReconciliationV1.event_type
    assert letter.queue == Names.commands_of(fleet.bench.settings, HANDLER).queue
    assert letter.error == "PermanentError: this command can never succeed"
    assert await fleet.bench.effects_count() == 0  # its transaction rolled back

    replica.permanent = False  # the cause is fixed
    replay = await replay_dead_letters(fleet.bench.settings, HANDLER)
    assert len(replay.replayed) == 1
    await eventually(lambda: _effects(fleet.bench, 1))
    assert replica.handled == [str(command.reconciliation_id)] * 2


async def test_events_and_commands_from_one_outbox_each_reach_only_their_own_exchange(
    fleet: Fleet,
) -> None:
    await fleet.start_replica()
    async with tap(fleet.bench.settings) as events:
        registered = user_registered()
        command = _command()
        await fleet.bench.stage(command)
        await fleet.bench.stage(registered)

        [published] = await collect(events, 1)
        await eventually(lambda: _effects(fleet.bench, 1))

    assert published.type == UserRegisteredV1.event_type
    assert fleet.handled() == [str(command.reconciliation_id)]
