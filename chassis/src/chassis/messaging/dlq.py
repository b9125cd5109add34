"""Inspecting and re-driving a service's dead letters:
`python -m <svc> dlq list|replay [--id EVENT_ID] [--force]`.

A replayed event is deduplicated by the consumer's inbox only while the inbox remembers it:
`INBOX_RETENTION_DAYS` after it was handled (`chassis.messaging.retention`). A dead letter's
event may have been handled through another copy (a crash between dead-lettering a copy and
acking the original, a producer's re-send), so replaying a letter older than that may apply its
effects a second time. A letter's age runs from its event's creation (the CloudEvent `time`; no
copy is handled before the event exists), else from when it was dead-lettered (a body that is not
a CloudEvent). Within the window a replay is safe: a copy handled before is still in the inbox.
`dlq list` shows each letter's age and whether it is past the window; `dlq replay` leaves such
letters in the queue (and exits non-zero) unless `--force` says someone checked that their
effects never happened. Replay while the consumer runs: the window is measured at the replay.

The service's events and its commands share its dead-letter queue: each letter says the queue it
came from (`queue` in `dlq list`), and a replay sends it back there.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from chassis.cli import Command
from chassis.messaging.consumer import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    FAILED_AT_HEADER,
    ORIGIN_HEADER,
)
from chassis.messaging.topology import Names
from chassis.settings import ServiceSettings, WithBroker


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str | None
    event_type: str | None
    error: str
    failed_at: str
    # The queue it was dead-lettered from (the service's events or commands queue), if known.
    queue: str | None
    # Since the event was created (else dead-lettered); None when neither time is readable.
    age: timedelta | None
    # Older than INBOX_RETENTION_DAYS (or of unknown age): a replay may be handled twice.
    past_inbox_retention: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": self.event_type,
            "error": self.error,
            "failed_at": self.failed_at,
            "queue": self.queue,
            "age": age_text(self.age),
            "age_seconds": None if self.age is None else int(self.age.total_seconds()),
            "past_inbox_retention": self.past_inbox_retention,
        }


@dataclass(frozen=True, slots=True)
class Replay:
    replayed: list[DeadLetter]
    # Past the inbox retention and replayed without `force`: left in the dead-letter queue.
    held_back: list[DeadLetter]


def age_text(age: timedelta | None) -> str:
    """`9d 4h`, `3h 12m`, `5m 2s`, `42s`; `unknown` without an age."""
    if age is None:
        return "unknown"
    seconds = int(age.total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) and value else None


def _return_queue(letter: DeadLetter, names: Names, commands: Names) -> str:
    """Where a replayed letter goes: the service queue it came from; the events queue for a
    letter of unknown origin (dead-lettered before letters said where they came from)."""
    return letter.queue if letter.queue in (names.queue, commands.queue) else names.queue


def _event_time(body: bytes) -> datetime | None:
    try:
        envelope = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return _timestamp(envelope.get("time")) if isinstance(envelope, dict) else None


def _describe(message: AbstractIncomingMessage, *, now: datetime, window: timedelta) -> DeadLetter:
    headers = message.headers or {}
    born = _event_time(message.body) or _timestamp(headers.get(FAILED_AT_HEADER))
    # A clock ahead of ours makes a young event look younger still, never negative.
    age = None if born is None else max(now - born, timedelta(0))
    return DeadLetter(
        message_id=message.message_id,
        event_type=message.type,
        error=str(headers.get(ERROR_HEADER, "")),
        failed_at=str(headers.get(FAILED_AT_HEADER, "")),
        queue=_text(headers.get(ORIGIN_HEADER)),
        age=age,
        past_inbox_retention=age is None or age > window,
    )


def inbox_window(settings: WithBroker) -> timedelta:
    """How long after its handling an event's id stays in the inbox."""
    return timedelta(days=settings.inbox_retention_days)


async def _drain(
    settings: WithBroker, service: str
) -> tuple[
    aio_pika.abc.AbstractRobustConnection,
    aio_pika.abc.AbstractChannel,
    list[AbstractIncomingMessage],
]:
    """Take every dead letter without acking it: each is held until acked or rejected."""
    connection = await aio_pika.connect_robust(
        settings.amqp_url, timeout=settings.amqp_connect_timeout_seconds
    )
    channel = await connection.channel()
    queue = await channel.get_queue(Names.of(settings, service).dlq, ensure=True)
    held: list[AbstractIncomingMessage] = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        held.append(message)
    return connection, channel, held


async def list_dead_letters(settings: WithBroker, service: str) -> list[DeadLetter]:
    connection, _, held = await _drain(settings, service)
    try:
        now, window = datetime.now(UTC), inbox_window(settings)
        letters = [_describe(m, now=now, window=window) for m in held]
        for message in held:
            await message.reject(requeue=True)
        return letters
    finally:
        await connection.close()


async def replay_dead_letters(
    settings: WithBroker, service: str, message_id: str | None = None, *, force: bool = False
) -> Replay:
    """Send dead letters (all, or the one with `message_id`) back to the queue each came from
    with a fresh retry budget. Letters past the inbox retention stay in the dead-letter queue unless
    `force`: see the module's docstring."""
    names = Names.of(settings, service)
    commands = Names.commands_of(settings, service)
    connection, channel, held = await _drain(settings, service)
    now, window = datetime.now(UTC), inbox_window(settings)
    replayed: list[DeadLetter] = []
    held_back: list[DeadLetter] = []
    try:
        for message in held:
            if message_id is not None and message.message_id != message_id:
                await message.reject(requeue=True)
                continue
            letter = _describe(message, now=now, window=window)
            if letter.past_inbox_retention and not force:
                await message.reject(requeue=True)
                held_back.append(letter)
                continue
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in (ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, ORIGIN_HEADER)
            }
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=_return_queue(letter, names, commands),
                timeout=settings.amqp_publish_timeout_seconds,
            )
            await message.ack()
            replayed.append(letter)
        return Replay(replayed, held_back)
    finally:
        await connection.close()


def held_back_message(letters: list[DeadLetter], settings: WithBroker) -> str:
    """Why `dlq replay` left these letters in the queue, and what to do about them."""
    days = settings.inbox_retention_days
    lines = [
        f"dlq replay: left {len(letters)} dead letter(s) in the queue, older than "
        f"INBOX_RETENTION_DAYS ({days} days) or of unknown age:",
        *(
            f"  {letter.message_id} {letter.event_type} (age {age_text(letter.age)})"
            for letter in letters
        ),
        f"The inbox forgets handled events {days} days after handling them: if one of these "
        "events was handled before (through another copy), replaying it applies its effects "
        "again. Check that its effects never happened, then replay it with "
        "`dlq replay --id EVENT_ID --force`.",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    sub.add_parser("list", help="print the dead letters as JSON lines, with their age")
    replay = sub.add_parser("replay", help="send dead letters back to the service's queue")
    replay.add_argument("--id", dest="message_id", help="only the message with this event id")
    replay.add_argument(
        "--force",
        action="store_true",
        help="also letters older than INBOX_RETENTION_DAYS, which may be handled a second time",
    )


async def run(args: argparse.Namespace, settings: WithBroker, service: str) -> None:
    if args.dlq_command == "list":
        letters = await list_dead_letters(settings, service)
        for letter in letters:
            print(json.dumps(letter.as_dict()))
        past = sum(letter.past_inbox_retention for letter in letters)
        summary = f"# {len(letters)} dead letters"
        if past:
            summary += (
                f"; {past} older than INBOX_RETENTION_DAYS ({settings.inbox_retention_days} "
                "days): `dlq replay` leaves them in the queue without --force"
            )
        print(summary)
        return
    replay = await replay_dead_letters(settings, service, args.message_id, force=args.force)
    for letter in replay.replayed:
        print(json.dumps(letter.as_dict()))
    print(f"# {len(replay.replayed)} replayed")
    if replay.held_back:
        raise SystemExit(held_back_message(replay.held_back, settings))


def command(service: str) -> Command:
    """The `dlq list|replay` subcommand of a consuming service's CLI."""

    async def run_dlq(args: argparse.Namespace, settings: ServiceSettings) -> None:
        assert isinstance(settings, WithBroker)
        await run(args, settings, service)

    return Command(
        "dlq",
        f"list the dead letters of {service}'s consumer, or replay them",
        run_dlq,
        add_arguments,
    )
