"""Inspecting and re-driving a service's dead letters: `python -m <svc> dlq list|replay [--id]`."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from chassis.cli import Command
from chassis.messaging.consumer import ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER
from chassis.messaging.topology import Names
from chassis.settings import ServiceSettings, WithBroker


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message_id: str | None
    event_type: str | None
    error: str
    failed_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": self.event_type,
            "error": self.error,
            "failed_at": self.failed_at,
        }


def _describe(message: AbstractIncomingMessage) -> DeadLetter:
    headers = message.headers or {}
    return DeadLetter(
        message_id=message.message_id,
        event_type=message.type,
        error=str(headers.get(ERROR_HEADER, "")),
        failed_at=str(headers.get(FAILED_AT_HEADER, "")),
    )


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
        letters = [_describe(m) for m in held]
        for message in held:
            await message.reject(requeue=True)
        return letters
    finally:
        await connection.close()


async def replay_dead_letters(
    settings: WithBroker, service: str, message_id: str | None = None
) -> list[DeadLetter]:
    """Send dead letters (all, or the one with `message_id`) back to the service's queue with a
    fresh retry budget; returns what was replayed."""
    names = Names.of(settings, service)
    connection, channel, held = await _drain(settings, service)
    replayed: list[DeadLetter] = []
    try:
        for message in held:
            if message_id is not None and message.message_id != message_id:
                await message.reject(requeue=True)
                continue
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if k not in (ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER)
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
                routing_key=names.queue,
                timeout=settings.amqp_publish_timeout_seconds,
            )
            await message.ack()
            replayed.append(_describe(message))
        return replayed
    finally:
        await connection.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    sub.add_parser("list", help="print the dead letters as JSON lines")
    replay = sub.add_parser("replay", help="send dead letters back to the service's queue")
    replay.add_argument("--id", dest="message_id", help="only the message with this event id")


async def run(args: argparse.Namespace, settings: WithBroker, service: str) -> None:
    if args.dlq_command == "list":
        letters = await list_dead_letters(settings, service)
    else:
        letters = await replay_dead_letters(settings, service, args.message_id)
    for letter in letters:
        print(json.dumps(letter.as_dict()))
    verb = "dead letters" if args.dlq_command == "list" else "replayed"
    print(f"# {len(letters)} {verb}")


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
