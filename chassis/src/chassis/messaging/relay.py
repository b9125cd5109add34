"""The outbox relay: publishes committed outbox rows to the broker, then marks them published.

Woken by LISTEN/NOTIFY as soon as a producer commits, with polling as the fallback. Several
relays may run at once (one per replica): rows are claimed with `FOR UPDATE SKIP LOCKED`, and a
row is only eligible while no earlier unpublished row of the same subject exists, so events of
one aggregate leave in order even when relays race. A row is marked published only after the
broker confirmed it; a crash in between means the event is published again, which consumers'
inboxes absorb (at-least-once delivery, exactly-once effects).

Each publish is a PRODUCER span in the trace that staged the event (its stored `traceparent`), not
in the relay's loop, and the message's `traceparent` header names that span: the consumer's span
hangs under it, so a trace crosses the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aio_pika
import asyncpg
import sqlalchemy as sa
from aio_pika.abc import AbstractExchange
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from chassis.logging import get_logger
from chassis.messaging.metrics import OUTBOX_BACKLOG, OUTBOX_LAG, OUTBOX_PUBLISHED
from chassis.messaging.outbox import Outbox

log = get_logger(__name__)
tracer = trace.get_tracer("chassis.messaging")

_CLAIM = """
SELECT o.id, o.event_id, o.event_type, o.body
FROM {table} o
WHERE o.published_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM {table} p
    WHERE p.published_at IS NULL AND p.subject = o.subject AND p.id < o.id
  )
ORDER BY o.id
LIMIT :limit
FOR UPDATE SKIP LOCKED
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
        engine: AsyncEngine,
        exchange: AbstractExchange,
        listen_dsn: str,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
        publish_timeout: float = 10.0,
    ) -> None:
        self.outbox = outbox
        self.engine = engine
        self.exchange = exchange
        self.listen_dsn = listen_dsn
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._table = f'"{outbox.schema}"."{outbox.table.name}"'
        self._health_at = 0.0

    async def run(self) -> None:
        """Publish until cancelled; survives broker and database outages by retrying."""
        # The loop belongs to no trace, whichever request or test happened to start it.
        token = otel_context.attach(otel_context.Context())
        listener = await self._listen()
        try:
            while True:
                try:
                    published = await self.publish_batch()
                    await self._report_health()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("outbox_relay_failed", error=type(exc).__name__, detail=str(exc))
                    published = 0
                    await asyncio.sleep(self.poll_seconds)
                # Publishing a row can make the next row of its subject eligible: only an empty
                # pass means there is nothing to do until the next NOTIFY (or poll).
                if published == 0:
                    # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a
                    # cancellation that arrives as the wake-up fires, and `stop()` then hangs.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_seconds):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            otel_context.detach(token)

    async def _listen(self) -> asyncpg.Connection | None:
        """A dedicated connection that turns NOTIFY into a wake-up; polling covers its absence."""
        try:
            conn = await asyncpg.connect(self.listen_dsn, timeout=5)
            await conn.add_listener(self.outbox.channel, lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox_listen_unavailable", error=type(exc).__name__)
            return None
        return conn

    async def publish_batch(self) -> int:
        """Claim, publish (confirmed) and mark one batch; returns how many were published."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.text(_CLAIM.format(table=self._table)), {"limit": self.batch_size}
                )
            ).all()
            # A batch holds at most one row per subject (an earlier unpublished row of the same
            # subject makes a row ineligible), so its rows may be in flight together: the
            # broker's confirms are awaited concurrently, not one round trip after another.
            publishing = [asyncio.ensure_future(self._publish_row(row)) for row in rows]
            try:
                await asyncio.gather(*publishing)
            except BaseException:
                for task in publishing:
                    task.cancel()  # the batch is abandoned (not marked): stop what is in flight
                raise
            if rows:
                await self._mark(conn, [row.id for row in rows])
        for row in rows:
            OUTBOX_PUBLISHED.labels(row.event_type).inc()
        return len(rows)

    async def _publish_row(self, row: sa.Row[Any]) -> None:
        await self._publish(row.event_id, row.event_type, row.body)
        await self.after_publish(row.event_id)

    async def after_publish(self, event_id: Any) -> None:
        """Hook between the broker's confirm and the commit (tests crash the relay here)."""

    async def _publish(self, event_id: Any, event_type: str, body: dict[str, Any]) -> None:
        staged_in = propagate.extract(
            {"traceparent": body.get("traceparent") or ""}, context=otel_context.Context()
        )
        with tracer.start_as_current_span(
            f"publish {event_type}",
            context=staged_in,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.destination.name": self.exchange.name,
                "messaging.rabbitmq.destination.routing_key": event_type,
                "messaging.message.id": str(event_id),
            },
        ):
            headers: dict[str, Any] = {}
            propagate.inject(headers)
            if body.get("correlationid"):
                headers["correlation_id"] = body["correlationid"]
            await self.exchange.publish(
                aio_pika.Message(
                    json.dumps(body, separators=(",", ":")).encode(),
                    message_id=str(event_id),
                    type=event_type,
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=headers,
                ),
                routing_key=event_type,
                timeout=self.publish_timeout,
            )

    async def _mark(self, conn: AsyncConnection, ids: list[int]) -> None:
        table = self.outbox.table
        await conn.execute(
            sa.update(table).where(table.c.id.in_(ids)).values(published_at=sa.func.now())
        )

    async def _report_health(self) -> None:
        now = time.monotonic()
        if now - self._health_at < 1.0:
            return
        self._health_at = now
        async with self.engine.connect() as conn:
            backlog, lag = (await conn.execute(sa.text(_HEALTH.format(table=self._table)))).one()
        OUTBOX_BACKLOG.set(backlog)
        OUTBOX_LAG.set(float(lag))
