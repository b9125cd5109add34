"""Wiring a service to the broker: one robust connection, the relay and the DLQ depth gauge as
background loops (`chassis.loops`, on the app's `Loops` when given), the event consumer and the
command consumer, a readiness check on the live connection, and an orderly stop."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.health import Check
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop, Loops
from chassis.messaging.consumer import Consumer, Inbox
from chassis.messaging.handlers import Handlers
from chassis.messaging.metrics import COMMAND_QUEUE_DEPTH, CONSUMER_PREFETCH, DLQ_DEPTH
from chassis.messaging.outbox import Outbox
from chassis.messaging.relay import OutboxRelay, asyncpg_dsn
from chassis.messaging.topology import (
    Names,
    declare_command_exchange,
    declare_command_queue,
    declare_consumer_queues,
    declare_exchange,
)
from chassis.settings import WithBroker, WithDatabase
from contracts.commands import CommandPayload

log = get_logger(__name__)


class BrokerSettings(WithBroker, WithDatabase):
    """A service that publishes or consumes events (it needs both its database and the broker)."""


class Messaging:
    def __init__(
        self, settings: BrokerSettings, *, service: str, loops: Loops | None = None
    ) -> None:
        self.settings = settings
        self.service = service
        self.names = Names.of(settings, service)
        self.connection: AbstractRobustConnection | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: Consumer | None = None
        self.command_consumer: Consumer | None = None
        self._loops = loops if loops is not None else Loops()
        self._own: list[BackgroundLoop] = []

    async def connect(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.settings.amqp_url,
            timeout=self.settings.amqp_connect_timeout_seconds,
            # How the broker's tools (rabbitmqctl, the management UI) name this connection.
            client_properties={
                "connection_name": f"{self.settings.amqp_queue_prefix}{self.service}"
            },
        )

    async def start_relay(
        self, outbox: Outbox, *, sends: Iterable[type[CommandPayload]] = ()
    ) -> OutboxRelay:
        """The relay of `outbox`; `sends`: the commands the service stages there, whose
        handlers' queues are declared now so that every send is routed."""
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=True)
        exchange = await declare_exchange(channel, self.settings)
        commands = None
        by_handler: dict[str, list[str]] = defaultdict(list)
        for command in sends:
            by_handler[command.handled_by].append(command.event_type)
        if by_handler:
            # A command the broker cannot route fails its publish instead of vanishing.
            command_channel = await self.connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            commands = await declare_command_exchange(command_channel, self.settings)
            for service, command_types in sorted(by_handler.items()):
                await declare_command_queue(command_channel, self.settings, service, command_types)
        self.relay = OutboxRelay(
            outbox=outbox,
            exchange=exchange,
            commands=commands,
            dsn=asyncpg_dsn(self.settings.database_url),
            batch_size=self.settings.outbox_batch_size,
            poll_seconds=self.settings.outbox_poll_seconds,
            publish_timeout=self.settings.amqp_publish_timeout_seconds,
            statement_timeout_ms=self.settings.db_statement_timeout_ms,
        )
        self._own.append(self._loops.add(self.relay.loop))
        return self.relay

    async def start_consumer(
        self,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Handlers,
    ) -> Consumer:
        """The consumer of the service's event queue, `CONSUMER_PREFETCH` events in hand at
        most; the depth of the service's dead-letter queue is a gauge."""
        CONSUMER_PREFETCH.set(self.settings.consumer_prefetch)
        self.consumer, channel = await self._consume(
            self.names, inbox, sessions, handlers, prefetch=self.settings.consumer_prefetch
        )
        self._gauge_depth("dlq_depth", channel, self.names.dlq, DLQ_DEPTH)
        return self.consumer

    async def start_command_consumer(
        self,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Handlers,
    ) -> Consumer:
        """The consumer of the service's command queue (`handlers`: `Handlers.for_commands()`),
        on a channel of its own with `COMMAND_PREFETCH` commands in hand at most; its depth is a
        gauge (what an autoscaler reads)."""
        names = Names.commands_of(self.settings, self.service)
        self.command_consumer, channel = await self._consume(
            names, inbox, sessions, handlers, prefetch=self.settings.command_prefetch
        )
        self._gauge_depth("command_queue_depth", channel, names.queue, COMMAND_QUEUE_DEPTH)
        return self.command_consumer

    async def _consume(
        self,
        names: Names,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Handlers,
        *,
        prefetch: int,
    ) -> tuple[Consumer, AbstractChannel]:
        """A consumer of `names.queue` on a channel of its own, its queues declared."""
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        consumer = Consumer(
            names=names,
            inbox=inbox,
            sessions=sessions,
            handlers=handlers,
            retry_delays_ms=self.settings.consumer_retry_delays_ms,
            redelivery_limit=self.settings.consumer_redelivery_limit,
            publish_timeout=self.settings.amqp_publish_timeout_seconds,
        )
        queue = await declare_consumer_queues(channel, self.settings, names, consumer.event_types)
        await consumer.start(channel, queue)
        return consumer, channel

    def _gauge_depth(
        self, name: str, channel: AbstractChannel, queue_name: str, gauge: Gauge
    ) -> None:
        """A loop setting `gauge` to the messages ready in `queue_name` every 15 s."""

        async def measure() -> bool:
            declared = await channel.declare_queue(queue_name, passive=True)
            gauge.set(declared.declaration_result.message_count or 0)
            return False

        self._own.append(self._loops.add(BackgroundLoop(name, measure, every_seconds=15)))

    def check(self) -> Check:
        async def probe() -> None:
            if self.connection is None or self.connection.is_closed:
                msg = "broker connection is closed"
                raise ConnectionError(msg)

        return Check("rabbitmq", probe)

    async def stop(self, grace: float = 10.0) -> None:
        """The consumers first (events and commands in hand finish), then the loops (the relay's
        batch in hand is confirmed and marked), each within the grace period; then the
        connection."""
        consumers = [c for c in (self.consumer, self.command_consumer) if c is not None]
        await asyncio.gather(*(consumer.stop(grace) for consumer in consumers))
        loops, self._own = self._own, []
        await asyncio.gather(*(loop.stop(grace) for loop in loops))
        if self.connection is not None:
            await self.connection.close()
