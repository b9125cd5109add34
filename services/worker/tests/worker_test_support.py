"""Helpers of the worker tests: publishing events, reading the worker's tables, waiting."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import CloudEvent, EventPayload, UserRegisteredV1, new_event
from worker.models import Notification, WebhookDelivery, inbox


@dataclass(frozen=True)
class Bus:
    """The test session's exchange on the real broker."""

    amqp_url: str
    exchange: str

    async def publish(self, *events: CloudEvent) -> None:
        """Publish as a producer's relay would: keyed by the event type, confirmed."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            for event in events:
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

    async def register(self, someone: Any) -> uuid.UUID:
        """Publish the `user.registered` of someone with `id` and `email` (the worker learns
        their address from it); returns the event id."""
        event = event_of(UserRegisteredV1(user_id=someone.id, email=someone.email))
        await self.publish(event)
        return event.id


def event_of(payload: EventPayload) -> CloudEvent:
    source = "/fleet/auth" if payload.event_type.startswith("user.") else "/fleet/orders"
    return new_event(payload, source=source, subject=str(uuid.uuid4()))


@dataclass(frozen=True)
class WorkerDb:
    """Direct reads of the worker schema, to check what the worker really wrote."""

    engine: AsyncEngine

    async def notifications(self, event_id: uuid.UUID) -> list[dict[str, Any]]:
        query = sa.select(Notification.__table__).where(Notification.event_id == event_id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def deliveries(self, event_id: uuid.UUID) -> list[dict[str, Any]]:
        query = sa.select(WebhookDelivery.__table__).where(WebhookDelivery.event_id == event_id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def handled(self, event_id: uuid.UUID) -> bool:
        """Whether the consumer committed the event's effects (its id is in the inbox)."""
        table = inbox.table
        query = sa.select(table.c.event_id).where(table.c.event_id == event_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None


async def eventually(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 10.0,
    interval: float = 0.05,
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        outcome = predicate()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)


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
