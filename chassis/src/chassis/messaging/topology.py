"""Exchange and queue layout on RabbitMQ.

One durable topic exchange for all events (routing key = event type). Each consuming service
has one durable quorum queue bound to the types it handles, one delay queue per retry step (a
message waits there for its TTL, then is dead-lettered back into the service's queue), and a
quorum dead-letter queue where messages go after the retry budget, with the failure reason.

Commands (`contracts.commands`) have a durable direct exchange of their own (routing key =
command type). The service that handles a command type has one quorum queue for its commands,
`<service>.commands`, bound to those types, with retry queues of its own that lead back into it;
it shares the service's dead-letter queue (a letter remembers the queue it came from, so a replay
goes back there). A sender declares the handler's command queue and binding too before it sends
(`declare_command_queue`, the same arguments as the handler's declaration): a command is routable
from its first send, even before the handling service ever started.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from chassis.settings import WithBroker


@dataclass(frozen=True, slots=True)
class Names:
    """One consumer's queues: the queue it takes messages from, its retry queues (each leads
    back into it) and the service's dead-letter queue; and the exchange its queue is bound to."""

    exchange: str
    queue: str
    dlq: str
    retry_queues: tuple[str, ...]
    exchange_type: aio_pika.ExchangeType = aio_pika.ExchangeType.TOPIC

    @classmethod
    def of(cls, settings: WithBroker, service: str) -> Names:
        """A service's event queues."""
        base = f"{settings.amqp_queue_prefix}{service}"
        return cls(
            exchange=settings.amqp_exchange,
            queue=f"{base}.events",
            dlq=f"{base}.dlq",
            retry_queues=tuple(f"{base}.retry.{ms}ms" for ms in settings.consumer_retry_delays_ms),
        )

    @classmethod
    def commands_of(cls, settings: WithBroker, service: str) -> Names:
        """A service's command queues (the dead-letter queue is the service's one)."""
        base = f"{settings.amqp_queue_prefix}{service}"
        return cls(
            exchange=settings.amqp_command_exchange,
            queue=f"{base}.commands",
            dlq=f"{base}.dlq",
            retry_queues=tuple(
                f"{base}.commands.retry.{ms}ms" for ms in settings.consumer_retry_delays_ms
            ),
            exchange_type=aio_pika.ExchangeType.DIRECT,
        )


async def declare_exchange(channel: AbstractChannel, settings: WithBroker) -> AbstractExchange:
    return await channel.declare_exchange(
        settings.amqp_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_command_exchange(
    channel: AbstractChannel, settings: WithBroker
) -> AbstractExchange:
    return await channel.declare_exchange(
        settings.amqp_command_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )


def _quorum(settings: WithBroker) -> dict[str, Any]:
    return {"x-queue-type": "quorum", **_expiry(settings)}


async def declare_command_queue(
    channel: AbstractChannel, settings: WithBroker, service: str, command_types: Iterable[str]
) -> None:
    """The command queue of `service` bound to `command_types`, as its handler declares it: for
    a sender, so that what it sends is routed from the first send on."""
    exchange = await declare_command_exchange(channel, settings)
    names = Names.commands_of(settings, service)
    queue = await channel.declare_queue(names.queue, durable=True, arguments=_quorum(settings))
    for command_type in command_types:
        await queue.bind(exchange, routing_key=command_type)


def _expiry(settings: WithBroker) -> dict[str, Any]:
    return {"x-expires": settings.amqp_queue_expires_ms} if settings.amqp_queue_expires_ms else {}


def dlq_arguments(quorum: dict[str, Any], server_version: str) -> dict[str, Any]:
    """The dead-letter queue's arguments on a broker of `server_version`.

    From RabbitMQ 4.0 on, quorum queues have a default delivery limit of 20: a message returned
    to the queue (rejected with requeue) that often is dead-lettered, or dropped when the queue
    has none, as the DLQ. `dlq list` and `dlq replay` return every letter they look at, so on 4.x
    the DLQ has no limit (`-1`, a value 3.x refuses and does not need: it has no default limit).
    """
    major = server_version.split(".", 1)[0]
    if major.isdigit() and int(major) >= 4:  # the release that introduced the default limit
        return {**quorum, "x-delivery-limit": -1}
    return quorum


async def declare_consumer_queues(
    channel: AbstractChannel,
    settings: WithBroker,
    names: Names,
    event_types: Iterable[str],
) -> AbstractQueue:
    exchange = await channel.declare_exchange(names.exchange, names.exchange_type, durable=True)
    quorum = _quorum(settings)
    queue = await channel.declare_queue(names.queue, durable=True, arguments=quorum)
    for event_type in event_types:
        await queue.bind(exchange, routing_key=event_type)
    underlay = await channel.get_underlay_channel()
    version = str(underlay.connection.server_properties.get("version", ""))
    await channel.declare_queue(names.dlq, durable=True, arguments=dlq_arguments(quorum, version))
    for delay_ms, name in zip(settings.consumer_retry_delays_ms, names.retry_queues, strict=True):
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.queue,
                **_expiry(settings),
            },
        )
    return queue
