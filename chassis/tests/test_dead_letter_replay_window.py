"""Dead letters and the inbox's memory: a copy of an event handled longer ago than
`INBOX_RETENTION_DAYS` is handled again, so `dlq list` shows each letter's age (from its event's
`time`, else from when it was dead-lettered) and `dlq replay` leaves letters past that window in
the queue unless `--force`. Letters are put straight into a dead-letter queue of the test's own,
with their times in the past, never waited for."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
import sqlalchemy as sa
from aio_pika.abc import HeadersType
from chassis_messaging_support import Bench, messaging_bench, user_registered

from chassis.messaging import dlq
from chassis.messaging.consumer import ERROR_HEADER, FAILED_AT_HEADER
from chassis.messaging.retention import inbox_expiry
from chassis.messaging.runtime import BrokerSettings
from chassis.messaging.topology import Names, declare_consumer_queues
from chassis.retention import Purger
from contracts.events import CloudEvent, new_event
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, new_broker_namespace

SERVICE = "replayed"
DAY = timedelta(days=1)


@dataclass
class DeadLetterQueue:
    settings: BrokerSettings
    names: Names

    async def put(
        self,
        body: bytes,
        *,
        failed: timedelta | None = timedelta(minutes=1),
        message_id: str | None = None,
    ) -> str:
        """Dead-letter `body` as the consumer does, `failed` ago; its message id."""
        message_id = message_id or str(uuid.uuid4())
        headers: HeadersType = {ERROR_HEADER: "RuntimeError: the handler failed"}
        if failed is not None:
            headers[FAILED_AT_HEADER] = (datetime.now(UTC) - failed).isoformat()
        connection = await aio_pika.connect_robust(self.settings.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                aio_pika.Message(body, headers=headers, message_id=message_id, type="t"),
                routing_key=self.names.dlq,
            )
        finally:
            await connection.close()
        return message_id

    async def put_event(self, *, created: timedelta, failed: timedelta | None = None) -> str:
        """A dead letter of a CloudEvent created `created` ago (dead-lettered a minute later)."""
        event = _event(created=created)
        failed = created - timedelta(minutes=1) if failed is None else failed
        return await self.put(event.to_json(), failed=failed, message_id=str(event.id))

    async def ids(self) -> set[str | None]:
        return {letter.message_id for letter in await dlq.list_dead_letters(self.settings, SERVICE)}

    async def queued_for_the_consumer(self) -> int:
        connection = await aio_pika.connect_robust(self.settings.amqp_url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.names.queue, passive=True)
            return int(queue.declaration_result.message_count or 0)
        finally:
            await connection.close()


def _event(*, created: timedelta) -> CloudEvent:
    event = new_event(user_registered(), source="/fleet/test")
    return event.model_copy(update={"time": datetime.now(UTC) - created})


@pytest.fixture
async def letters(base_stack: Stack) -> DeadLetterQueue:
    """A consumer's queues of the test's own (they expire ten minutes after the test)."""
    settings = BrokerSettings(
        _env_file=None,
        amqp_url=base_stack.amqp_url,
        **{**new_broker_namespace(), "consumer_retry_delays_ms": [50]},
    )
    names = Names.of(settings, SERVICE)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        await declare_consumer_queues(await connection.channel(), settings, names, [])
    finally:
        await connection.close()
    return DeadLetterQueue(settings, names)


async def test_list_shows_each_letter_age_from_its_event_and_whether_it_is_past_the_window(
    letters: DeadLetterQueue,
) -> None:
    # Failed a minute ago, but its event is eight days old: the event's time counts.
    old_event = await letters.put_event(created=8 * DAY, failed=timedelta(minutes=1))
    young_event = await letters.put_event(created=DAY + timedelta(hours=3))
    # Not CloudEvents: aged from when they were dead-lettered, or of unknown age.
    old_garbage = await letters.put(b"not json", failed=9 * DAY)
    young_garbage = await letters.put(b'{"time": "not a time"}', failed=timedelta(hours=2))
    unknown = await letters.put(b"\xff\xfe", failed=None)

    listed = {
        letter.message_id: letter
        for letter in await dlq.list_dead_letters(letters.settings, SERVICE)
    }

    assert {i: listed[i].past_inbox_retention for i in listed} == {
        old_event: True,
        young_event: False,
        old_garbage: True,
        young_garbage: False,
        unknown: True,
    }
    shown = {i: listed[i].as_dict() for i in listed}
    assert shown[old_event]["age"] == "8d 0h"
    assert shown[young_event]["age"] == "1d 3h"
    assert shown[old_garbage]["age"] == "9d 0h"
    assert shown[young_garbage]["age"] == "2h 0m"
    assert shown[unknown]["age"] == "unknown"
    assert shown[unknown]["age_seconds"] is None
    assert abs(shown[old_event]["age_seconds"] - 8 * 86_400) < 60
    # Listing takes nothing away.
    assert await letters.ids() == set(listed)


async def test_replay_leaves_letters_past_the_inbox_retention_in_the_queue(
    letters: DeadLetterQueue,
) -> None:
    old = await letters.put_event(created=7 * DAY + timedelta(minutes=5))
    young = await letters.put_event(created=6 * DAY + timedelta(hours=23))

    replay = await dlq.replay_dead_letters(letters.settings, SERVICE)

    assert [letter.message_id for letter in replay.replayed] == [young]
    assert [letter.message_id for letter in replay.held_back] == [old]
    assert await letters.ids() == {old}
    assert await letters.queued_for_the_consumer() == 1


async def test_replay_by_id_of_an_old_letter_needs_force(letters: DeadLetterQueue) -> None:
    old = await letters.put_event(created=30 * DAY)
    other = await letters.put_event(created=30 * DAY)

    refused = await dlq.replay_dead_letters(letters.settings, SERVICE, old)
    forced = await dlq.replay_dead_letters(letters.settings, SERVICE, old, force=True)

    assert (refused.replayed, [x.message_id for x in refused.held_back]) == ([], [old])
    assert ([x.message_id for x in forced.replayed], forced.held_back) == ([old], [])
    assert await letters.ids() == {other}
    assert await letters.queued_for_the_consumer() == 1


async def test_the_window_is_inbox_retention_days(letters: DeadLetterQueue) -> None:
    eight_days_old = await letters.put_event(created=8 * DAY)
    longer_memory = letters.settings.model_copy(update={"inbox_retention_days": 10})

    replay = await dlq.replay_dead_letters(longer_memory, SERVICE)

    assert [letter.message_id for letter in replay.replayed] == [eight_days_old]


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dlq.add_arguments(parser)
    return parser.parse_args(argv)


async def test_the_cli_replays_the_others_then_fails_naming_what_it_left_and_why(
    letters: DeadLetterQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    old = await letters.put_event(created=12 * DAY)
    young = await letters.put_event(created=DAY)

    await dlq.run(_cli("list"), letters.settings, SERVICE)
    listed = capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        await dlq.run(_cli("replay"), letters.settings, SERVICE)
    replayed = capsys.readouterr().out

    assert '"past_inbox_retention": true' in listed
    assert '"age": "12d 0h"' in listed
    assert listed.rstrip().endswith(
        "# 2 dead letters; 1 older than INBOX_RETENTION_DAYS (7 days): `dlq replay` leaves them "
        "in the queue without --force"
    )
    assert young in replayed
    assert old not in replayed
    assert replayed.rstrip().endswith("# 1 replayed")
    message = str(refused.value.code)
    assert message.startswith("dlq replay: left 1 dead letter(s) in the queue, older than ")
    assert f"  {old} t (age 12d 0h)" in message
    assert "INBOX_RETENTION_DAYS (7 days)" in message
    assert "`dlq replay --id EVENT_ID --force`" in message

    await dlq.run(_cli("replay", "--id", old, "--force"), letters.settings, SERVICE)

    assert old in capsys.readouterr().out
    assert await letters.ids() == set()


def test_ages_read_in_days_hours_minutes_and_seconds() -> None:
    assert dlq.age_text(timedelta(days=9, hours=4, minutes=59)) == "9d 4h"
    assert dlq.age_text(timedelta(hours=3, minutes=12, seconds=7)) == "3h 12m"
    assert dlq.age_text(timedelta(minutes=5, seconds=2)) == "5m 2s"
    assert dlq.age_text(timedelta(seconds=42)) == "42s"
    assert dlq.age_text(None) == "unknown"


# Why the window matters: the inbox is all that makes a second copy change nothing.


@pytest.fixture
async def bench(fleet_database: FleetDatabase) -> AsyncIterator[Bench]:
    async with messaging_bench(fleet_database, retention_index=True) as b:
        yield b


async def test_an_event_handled_longer_ago_than_the_inbox_retention_is_new_again(
    bench: Bench,
) -> None:
    event = _event(created=8 * DAY)
    async with bench.sessions() as session, session.begin():
        assert await bench.inbox.first_time(session, event)
    async with bench.sessions() as session, session.begin():
        assert not await bench.inbox.first_time(session, event)  # a copy within the window
    async with bench.engine.begin() as conn:
        await conn.execute(
            sa.update(bench.inbox.table)
            .where(bench.inbox.table.c.event_id == event.id)
            .values(processed_at=sa.func.now() - (7 * DAY + timedelta(minutes=1)))
        )
    await Purger(bench.engine, [inbox_expiry(bench.inbox, bench.settings)], batch_size=10).purge()

    async with bench.sessions() as session, session.begin():
        assert await bench.inbox.first_time(session, event)  # a replayed copy: handled again
