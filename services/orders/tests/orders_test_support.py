"""Helpers of the orders tests: the broker namespace, publishing events, reading the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import CloudEvent, EventPayload, new_event
from orders.models import Order, inbox, outbox

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class BrokerNamespace:
    """An exchange and queue prefix no other test session uses."""

    exchange: str
    queue_prefix: str

    @classmethod
    def fresh(cls) -> BrokerNamespace:
        suffix = uuid.uuid4().hex[:10]
        return cls(exchange=f"test.{suffix}.events", queue_prefix=f"test.{suffix}.")

    async def publish(self, event: CloudEvent) -> None:
        """Publish as catalog's relay would: to the topic exchange, keyed by the event type."""
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await exchange.publish(
                aio_pika.Message(
                    event.to_json(),
                    message_id=str(event.id),
                    type=event.type,
                    content_type="application/cloudevents+json",
                ),
                routing_key=event.type,
            )
        finally:
            await connection.close()

    @asynccontextmanager
    async def tap(self, routing_key: str) -> AsyncIterator[AbstractQueue]:
        """A private queue bound to the exchange: what was really published."""
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(exchange, routing_key=routing_key)
            yield queue
        finally:
            await connection.close()


def catalog_event(payload: EventPayload, *, subject: str) -> CloudEvent:
    return new_event(payload, source="/fleet/catalog", subject=subject)


async def message_about(
    queue: AbstractQueue, subject: str, timeout: float = 10.0
) -> AbstractIncomingMessage:
    """The first message whose CloudEvent is about `subject` (events of earlier tests that a
    relay publishes late are skipped)."""

    async def take() -> AbstractIncomingMessage:
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                if body_of(message).get("subject") == subject:
                    return message
        msg = "queue closed"
        raise AssertionError(msg)

    return await asyncio.wait_for(take(), timeout)


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class OrdersDb:
    """Direct reads of the orders schema, to check what a request or event really wrote."""

    engine: AsyncEngine

    async def events(self, subject: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """CloudEvents staged in the outbox about `subject`, oldest first."""
        table = outbox.table
        query = sa.select(table.c.body).where(table.c.subject == subject).order_by(table.c.id)
        if event_type is not None:
            query = query.where(table.c.event_type == event_type)
        async with self.engine.connect() as conn:
            return [dict(row.body) for row in await conn.execute(query)]

    async def events_of_user(self, user_id: str) -> list[dict[str, Any]]:
        table = outbox.table
        query = sa.select(table.c.body).where(table.c.body["data"]["user_id"].astext == user_id)
        async with self.engine.connect() as conn:
            return [dict(row.body) for row in await conn.execute(query)]

    async def orders_of(self, user_id: str) -> list[dict[str, Any]]:
        query = sa.select(Order.__table__).where(Order.user_id == uuid.UUID(user_id))
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def handled(self, event_id: uuid.UUID) -> bool:
        """Whether the consumer committed the effects of this event (its id is in the inbox)."""
        table = inbox.table
        query = sa.select(table.c.event_id).where(table.c.event_id == event_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def status(self, order_id: str) -> str:
        query = sa.select(Order.status).where(Order.id == uuid.UUID(order_id))
        async with self.engine.connect() as conn:
            return str((await conn.execute(query)).scalar_one())


def body_of(message: AbstractIncomingMessage) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.body)
    return body


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a Prometheus sample of this process."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    """An RFC 9457 problem with this status (and problem type code)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["request_id"]
    if code is not None:
        assert body["type"].endswith(f"/{code}"), body["type"]
