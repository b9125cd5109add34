"""Helpers of the worker tests: publishing events, reading the worker's tables, calling the
webhook API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.events import (
    CloudEvent,
    EventPayload,
    OrderConfirmedV1,
    UserRegisteredV1,
    new_event,
)
from fleetctl import testing
from fleetctl.testing import eventually
from worker.models import Notification, WebhookDelivery, WebhookSubscription, inbox, outbox


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

    async def end_secret_overlap(self, subscription_id: str) -> None:
        """Move the end of the subscription's secret overlap window into the past: the worker
        then signs as it will once the window has passed (no test waits hours for it)."""
        query = (
            sa.update(WebhookSubscription)
            .where(WebhookSubscription.id == uuid.UUID(subscription_id))
            .values(previous_secret_expires_at=sa.func.now() - timedelta(seconds=1))
        )
        async with self.engine.begin() as conn:
            assert (await conn.execute(query)).rowcount == 1

    async def outbox_bodies(self, subject: str) -> list[str]:
        """The messages the worker staged about `subject` (an export's id), as sent."""
        table = outbox.table
        query = sa.select(sa.cast(table.c.body, sa.Text)).where(table.c.subject == subject)
        async with self.engine.connect() as conn:
            return [str(body) for body in (await conn.execute(query)).scalars()]

    async def mails_about_export(self, export_id: str) -> int:
        """The e-mails the worker owes or sent about an export being ready."""
        query = (
            sa.select(sa.func.count())
            .select_from(Notification)
            .where(Notification.kind == "export_ready")
            .where(Notification.subject.contains(export_id))
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def handled(self, event_id: uuid.UUID) -> bool:
        """Whether the consumer committed the event's effects (its id is in the inbox)."""
        table = inbox.table
        query = sa.select(table.c.event_id).where(table.c.event_id == event_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None


# --- The webhook API, as a subscriber calls it (`someone`: conftest's Customer) ---


async def subscribe(
    client: httpx.AsyncClient,
    someone: Any,
    url: str,
    events: tuple[str, ...] = ("order.confirmed.v1",),
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "events": list(events)},
        headers=someone.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def delivery_log(
    client: httpx.AsyncClient, someone: Any, subscription: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/webhooks/subscriptions/{subscription['id']}/deliveries", headers=someone.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def order_confirmed(someone: Any) -> CloudEvent:
    return event_of(
        OrderConfirmedV1(order_id=uuid.uuid4(), user_id=someone.id, total_cents=990, currency="EUR")
    )


async def settled(
    client: httpx.AsyncClient, someone: Any, subscription: dict[str, Any], status: str
) -> dict[str, Any]:
    async def done() -> bool:
        items = await delivery_log(client, someone, subscription)
        return bool(items) and items[0]["status"] == status

    await eventually(done)
    return (await delivery_log(client, someone, subscription))[0]


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a Prometheus sample of this process."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
