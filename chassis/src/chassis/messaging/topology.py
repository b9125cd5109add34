"""Exchange and queue layout on RabbitMQ.

One durable topic exchange for all events (routing key = event type). Each consuming service
has one durable quorum queue bound to the types it handles, one delay queue per retry step (a
message waits there for its TTL, then is dead-lettered back into the service's queue), and a
quorum dead-letter queue where messages go after the retry budget, with the failure reason.
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
    exchange: str
    queue: str
    dlq: str
    retry_queues: tuple[str, ...]

    @classmethod
    def of(cls, settings: WithBroker, service: str) -> Names:
        base = f"{settings.amqp_queue_prefix}{service}"
        return cls(
            exchange=settings.amqp_exchange,
            queue=f"{base}.events",
            dlq=f"{base}.dlq",
            retry_queues=tuple(f"{base}.retry.{ms}ms" for ms in settings.consumer_retry_delays_ms),
        )


async def declare_exchange(channel: AbstractChannel, settings: WithBroker) -> AbstractExchange:
    return await channel.declare_exchange(
        settings.amqp_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )


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
    exchange = await declare_exchange(channel, settings)
    quorum = {"x-queue-type": "quorum", **_expiry(settings)}
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
