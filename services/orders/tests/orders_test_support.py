"""Helpers of the orders tests: catalog events, reading the orders schema, metrics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import CloudEvent, EventPayload, new_event
from orders.models import Order, inbox, outbox


def catalog_event(payload: EventPayload, *, subject: str) -> CloudEvent:
    return new_event(payload, source="/fleet/catalog", subject=subject)


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


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a Prometheus sample of this process."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
