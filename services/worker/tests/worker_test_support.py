"""Helpers of the worker tests: publishing events, reading the worker's tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import CloudEvent, EventPayload, UserRegisteredV1, new_event
from fleetctl import testing
from worker.models import Notification, WebhookDelivery, inbox


@dataclass(frozen=True)
class Bus(testing.Bus):
    """The test session's exchange on the real broker, and what the worker learns from it."""

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


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a Prometheus sample of this process."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
