"""The outbox relay: publishes committed outbox rows to the broker, then marks them published.

Woken by LISTEN/NOTIFY as soon as a producer commits, with polling as the fallback. Several
relays may run at once (one per replica): rows are claimed with `FOR UPDATE SKIP LOCKED`, and a
row is only eligible while no earlier unpublished row of the same subject exists, so events of
one aggregate leave in order even when relays race. A batch is marked published by the statement
that claims it, in a transaction committed only after the broker confirmed every row: a crash in
between rolls the mark back and the event is published again, which consumers' inboxes absorb
(at-least-once delivery, exactly-once effects).

Each publish is a PRODUCER span in the trace that staged the event (its stored `traceparent`), not
in the relay's loop, and the message's `traceparent` header names that span: the consumer's span
hangs under it, so a trace crosses the broker.

Commands (`contracts.commands`) share the outbox and this relay: a row whose type is a command
type goes to the command exchange instead of the event exchange, on a channel where a message
the broker cannot route fails its publish (and so the batch, retried with backoff) instead of
being dropped: a command has exactly one addressee and must reach it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractExchange
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from chassis.loops import BackgroundLoop
from chassis.messaging.metrics import OUTBOX_BACKLOG, OUTBOX_LAG, OUTBOX_PUBLISHED
from chassis.messaging.outbox import Outbox
from chassis.sql import qualified
from contracts.commands import is_command

# A relay that lost the broker or the database retries at least this often: events wait for it.
RETRY_AT_MOST_EVERY_SECONDS = 5.0

tracer = trace.get_tracer("chassis.messaging")

# Claims the batch and marks it published in one statement; the transaction stays open until
# the broker confirmed every row, so a failure rolls the mark back. `has_next`: a later row of
# the same subject is waiting, which this batch's publication makes eligible.
_CLAIM = """
UPDATE {table} SET published_at = now()
WHERE id IN (
  SELECT o.id FROM {table} o
  WHERE o.published_at IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM {table} p
      WHERE p.published_at IS NULL AND p.subject = o.subject AND p.id < o.id
    )
  ORDER BY o.id
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
RETURNING id, event_id, event_type, body::text AS body,
  body ->> 'traceparent' AS traceparent, body ->> 'correlationid' AS correlationid,
  EXISTS (
    SELECT 1 FROM {table} n
    WHERE n.published_at IS NULL AND n.subject = {table}.subject AND n.id > {table}.id
  ) AS has_next
"""
_HEALTH = """
SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
FROM {table} WHERE published_at IS NULL
"""


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class OutboxRelay:
    def __init__(
        self,
        *,
        outbox: Outbox,
        exchange: AbstractExchange,
        dsn: str,
        commands: AbstractExchange | None = None,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
        publish_timeout: float = 10.0,
        statement_timeout_ms: int = 5000,
        connect_timeout: float = 5.0,
    ) -> None:
        self.outbox = outbox
        self.exchange = exchange
        # The command exchange, for a service that sends commands.
        self.commands = commands
        self.dsn = dsn
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.statement_timeout_ms = statement_timeout_ms
        self.connect_timeout = connect_timeout
        # Woken by NOTIFY as soon as a producer commits; polling covers the time it is down.
        self.loop = BackgroundLoop(
            "outbox_relay",
            self.step,
            every_seconds=poll_seconds,
            max_backoff_seconds=RETRY_AT_MOST_EVERY_SECONDS,
            on_stop=self._disconnect,
        )
        table = qualified(outbox.table)
        self._claim = _CLAIM.format(table=table)
        self._health = _HEALTH.format(table=table)
        self._health_at = 0.0
        self._connection: asyncpg.Connection | None = None

    async def step(self) -> bool:
        """One pass of the relay's loop: publish a batch; whether another is due at once. A
        failure (broker or database gone) drops the connection; the loop retries with backoff."""
        try:
            connection = await self._connected()
            again = await self.publish_batch(connection)
            await self._report_health(connection)
        except BaseException:
            await self._disconnect()
            raise
        return again

    async def _connected(self) -> asyncpg.Connection:
        """The relay's own connection: it LISTENs (NOTIFY wakes the relay at once; polling
        covers the time it is down) and runs the claims.

        Bitmap scans are off on it: the claim must walk the partial index in order, because an
        index scan marks the entries of rows already published as dead and skips them next time,
        where a bitmap scan visits every one of them again until a vacuum runs. Published rows
        pile up between vacuums at hundreds per second, so that difference is the claim's cost.
        """
        if self._connection is not None and not self._connection.is_closed():
            return self._connection
        connection = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            command_timeout=self.statement_timeout_ms / 1000 + 1.0,
            server_settings={
                "statement_timeout": str(self.statement_timeout_ms),
                "enable_bitmapscan": "off",
                "application_name": f"outbox-relay {self.outbox.source}",
            },
        )
        try:
            await connection.add_listener(self.outbox.channel, self._on_notify)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        self.loop.wake()  # whatever was committed while it was away
        return connection

    def _on_notify(self, *_: Any) -> None:
        self.loop.wake()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await connection.close()
            except (Exception, TimeoutError):
                connection.terminate()

    async def publish_batch(self, connection: asyncpg.Connection) -> bool:
        """Claim, publish (confirmed) and mark one batch; whether another pass is due at once:
        the batch was full, or it unblocked the next row of one of its subjects (rows
        committed after the claim wake the relay with their own NOTIFY)."""
        async with connection.transaction():
            rows = await connection.fetch(self._claim, self.batch_size)
            # A batch holds at most one row per subject (an earlier unpublished row of the same
            # subject makes a row ineligible), so its rows may be in flight together: the
            # broker's confirms are awaited concurrently, not one round trip after another.
            publishing = [asyncio.ensure_future(self._publish_row(row)) for row in rows]
            try:
                await asyncio.gather(*publishing)
            except BaseException:
                for task in publishing:
                    task.cancel()  # the batch is abandoned (its mark rolls back): stop the rest
                raise
        for row in rows:
            OUTBOX_PUBLISHED.labels(row["event_type"]).inc()
        return len(rows) == self.batch_size or any(row["has_next"] for row in rows)

    async def _publish_row(self, row: asyncpg.Record) -> None:
        await self._publish(
            row["event_id"],
            row["event_type"],
            row["body"].encode(),
            traceparent=row["traceparent"],
            correlation_id=row["correlationid"],
        )
        await self.after_publish(row["event_id"])

    async def after_publish(self, event_id: Any) -> None:
        """Hook between the broker's confirm and the commit (tests crash the relay here)."""

    async def _publish(
        self,
        event_id: Any,
        event_type: str,
        body: bytes,
        *,
        traceparent: str | None,
        correlation_id: str | None,
    ) -> None:
        exchange = self.exchange
        if is_command(event_type):
            if self.commands is None:
                msg = f"{event_type} is a command, and this relay has no command exchange"
                raise RuntimeError(msg)
            exchange = self.commands
        staged_in = propagate.extract(
            {"traceparent": traceparent or ""}, context=otel_context.Context()
        )
        with tracer.start_as_current_span(
            f"publish {event_type}",
            context=staged_in,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.destination.name": exchange.name,
                "messaging.rabbitmq.destination.routing_key": event_type,
                "messaging.message.id": str(event_id),
            },
        ):
            headers: dict[str, Any] = {}
            propagate.inject(headers)
            if correlation_id:
                headers["correlation_id"] = correlation_id
            await exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=str(event_id),
                    type=event_type,
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=headers,
                ),
                routing_key=event_type,
                timeout=self.publish_timeout,
            )

    async def _report_health(self, connection: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._health_at < 1.0:
            return
        self._health_at = now
        backlog, lag = await connection.fetchrow(self._health)
        OUTBOX_BACKLOG.set(backlog)
        OUTBOX_LAG.set(float(lag))
