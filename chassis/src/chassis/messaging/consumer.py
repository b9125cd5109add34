"""The idempotent consumer: each event's effects happen once, however often it is delivered.

The event id is inserted into the service's inbox in the same transaction as the handler's
effects (and the events it stages in the outbox): a redelivered event finds its id there and
changes nothing. A failing handler is retried after growing delays (through per-delay queues);
after the last retry the message goes to the service's dead-letter queue with the reason. A
message that is not JSON, not a CloudEvent or of an unknown type is dead-lettered at once: no
retry can fix it, and it must not block the queue.

A message whose deliveries keep ending unsettled (the consumer is killed or loses its connection
while handling it) is dead-lettered once the broker's `x-delivery-count` reaches
`redelivery_limit`, before the handler sees it again. The consumer does this itself, so it works
the same on RabbitMQ 3.x and 4.x and on queues declared before, with no broker policy: 4.x's
quorum queues drop a message returned 20 times when no dead-letter route is set, and this limit
is below that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.messaging.context import handling_event
from chassis.messaging.handlers import Handlers, PermanentError
from chassis.messaging.metrics import CONSUMER_IN_FLIGHT, EVENT_HANDLING, EVENTS_CONSUMED
from chassis.messaging.tables import inbox_table
from chassis.messaging.topology import Names
from chassis.metrics import initialise_labels
from chassis.sql import qualified, sql
from contracts.events import (
    CloudEvent,
    EventPayload,
    InvalidEventError,
    UnknownEventError,
    parse_event,
)

ATTEMPT_HEADER = "x-fleet-attempt"
# Set by quorum queues: how many deliveries of the message ended without a settlement.
DELIVERY_COUNT_HEADER = "x-delivery-count"
ERROR_HEADER = "x-fleet-error"
FAILED_AT_HEADER = "x-fleet-failed-at"
# The queue a dead letter came from (the service's events or commands queue): `dlq replay`
# sends it back there.
ORIGIN_HEADER = "x-fleet-queue"
# What became of a consumed message, as `events_consumed_total` labels it.
OUTCOMES = ("processed", "duplicate", "retried", "dead_lettered")

# The event id, unless an earlier delivery recorded it: a row back means "first time".
_RECORD = """
INSERT INTO {table} (event_id, event_type) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING event_id
"""

log = get_logger(__name__)
tracer = trace.get_tracer("chassis.messaging")


def _published_in(message: AbstractIncomingMessage, event: CloudEvent) -> otel_context.Context:
    """The trace context the event was published in: the relay's PRODUCER span (the message's
    `traceparent` header), else the span that staged it (the envelope's). Never the consumer's
    own task context, so an event without either starts a trace of its own."""
    header = (message.headers or {}).get("traceparent")
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    traceparent = header if isinstance(header, str) and header else event.traceparent
    return propagate.extract({"traceparent": traceparent or ""}, context=otel_context.Context())


class Inbox:
    def __init__(self, metadata: sa.MetaData, *, retention_index: bool = False) -> None:
        """`retention_index`: the service's migrations built the index its purge needs."""
        self.table = inbox_table(metadata, retention_index=retention_index)
        self.retention_index = retention_index
        self._record = _RECORD.format(table=qualified(self.table))

    async def first_time(self, session: AsyncSession, event: CloudEvent) -> bool:
        """Record the event as processed; False if it already was."""
        inserted = await (await sql(session)).fetchrow(self._record, event.id, event.type)
        return inserted is not None


class Consumer:
    def __init__(
        self,
        *,
        names: Names,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Handlers,
        retry_delays_ms: list[int],
        redelivery_limit: int = 10,
        publish_timeout: float = 10.0,
    ) -> None:
        self.names = names
        self.inbox = inbox
        self.sessions = sessions
        self.handlers = handlers
        self.retry_delays_ms = retry_delays_ms
        self.redelivery_limit = redelivery_limit
        self.publish_timeout = publish_timeout
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # Messages of other types (unknown, unparseable) are dead-lettered: those series stay lazy.
        initialise_labels(EVENTS_CONSUMED, event_type=self.event_types, outcome=OUTCOMES)
        initialise_labels(EVENT_HANDLING, event_type=self.event_types)

    @property
    def event_types(self) -> list[str]:
        return self.handlers.event_types

    async def start(self, channel: AbstractChannel, queue: AbstractQueue) -> None:
        self._channel, self._queue = channel, queue
        CONSUMER_IN_FLIGHT.set_function(lambda: float(len(self._in_flight)))
        self._tag = await queue.consume(self._on_message)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking deliveries, then let the ones in hand finish (unacked ones come back)."""
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception as exc:
                log.warning("consumer_cancel_failed", error=type(exc).__name__)
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self.handle(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event, payload = parse_event(message.body, self.handlers.types)
        except (InvalidEventError, UnknownEventError) as exc:
            await self._dead_letter(message, f"{type(exc).__name__}: {exc}", "unparseable")
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            await self._dead_letter(message, f"no handler for {event.type}", event.type)
            return
        unsettled = (message.headers or {}).get(DELIVERY_COUNT_HEADER, 0)
        if isinstance(unsettled, int) and unsettled >= self.redelivery_limit:
            await self._dead_letter(
                message,
                f"delivered {unsettled + 1} times: {unsettled} deliveries ended without an "
                "answer (a consumer stopped while handling it)",
                event.type,
            )
            return
        started = time.perf_counter()
        with (
            tracer.start_as_current_span(
                f"consume {event.type}",
                context=_published_in(message, event),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": self.names.queue,
                    "messaging.message.id": str(event.id),
                },
            ) as span,
            handling_event(str(event.id), event.correlationid),
        ):
            outcome = await self._process(message, event, payload, handler)
            span.set_attribute("messaging.fleet.outcome", outcome)
            if outcome in ("retried", "dead_lettered"):
                span.set_status(trace.StatusCode.ERROR, outcome)
        EVENT_HANDLING.labels(event.type).observe(time.perf_counter() - started)
        EVENTS_CONSUMED.labels(event.type, outcome).inc()

    async def _process(
        self,
        message: AbstractIncomingMessage,
        event: CloudEvent,
        payload: EventPayload,
        handler: Callable[[UnitOfWork, CloudEvent, EventPayload], Awaitable[None]],
    ) -> str:
        try:
            async with UnitOfWork(self.sessions) as uow:
                if not await self.inbox.first_time(uow.session, event):
                    await message.ack()
                    log.info("event_duplicate_ignored", event_type=event.type)
                    return "duplicate"
                await handler(uow, event, payload)
                await uow.commit()
        except PermanentError as exc:
            await self._dead_letter(message, f"PermanentError: {exc}", event.type, count=False)
            return "dead_lettered"
        except Exception as exc:
            return await self._retry_or_dead_letter(message, event, exc)
        await message.ack()
        log.info("event_processed", event_type=event.type)
        return "processed"

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, event: CloudEvent, exc: Exception
    ) -> str:
        value = (message.headers or {}).get(ATTEMPT_HEADER, 0)
        attempt = value if isinstance(value, int) else 0
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= len(self.retry_delays_ms):
            log.error(
                "event_dead_lettered", event_type=event.type, attempts=attempt + 1, reason=reason
            )
            await self._dead_letter(message, reason, event.type, count=False)
            return "dead_lettered"
        log.warning(
            "event_retry_scheduled",
            event_type=event.type,
            attempt=attempt + 1,
            delay_ms=self.retry_delays_ms[attempt],
            reason=reason,
        )
        await self._republish(
            message, self.names.retry_queues[attempt], {ATTEMPT_HEADER: attempt + 1}
        )
        await message.ack()
        return "retried"

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: str, event_type: str, *, count: bool = True
    ) -> None:
        await self._republish(
            message,
            self.names.dlq,
            {
                ERROR_HEADER: reason[:1000],
                FAILED_AT_HEADER: datetime.now(UTC).isoformat(),
                ORIGIN_HEADER: self.names.queue,
            },
        )
        await message.ack()
        if count:
            EVENTS_CONSUMED.labels(event_type, "dead_lettered").inc()
            log.error("event_dead_lettered", event_type=event_type, reason=reason[:300])

    async def _republish(
        self, message: AbstractIncomingMessage, queue: str, extra: dict[str, Any]
    ) -> None:
        """Publish (confirmed) a copy before acking the original: a crash in between means a
        duplicate, never a loss."""
        assert self._channel is not None
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers={**(message.headers or {}), **extra},
                message_id=message.message_id,
                type=message.type,
                content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=queue,
            timeout=self.publish_timeout,
        )
