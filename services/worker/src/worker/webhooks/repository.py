"""Webhook subscriptions and deliveries in Postgres.

Deliveries are claimed like notifications: a claim is a lease (`next_attempt_at` moved past the
attempt's deadline, `attempts` counted), so an attempt that never settles — a crash — is taken
again once the lease runs out. Claims go subscription by subscription, each bounded by what that
subscription may still have in flight: a dead subscriber's backlog stays in the table instead of
filling every sender slot. A paused subscription's deliveries are never claimed (they are held
until it is resumed); a claim carries the secrets that sign it, so no delivery reads its
subscription again.

Every read and change of a subscription by the API names its owner: someone else's reads as
absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy import tuple_ as sa_tuple

from chassis.db import Repository
from chassis.pagination import PageKey
from chassis.sql import qualified, sql
from contracts.events import CloudEvent
from worker.models import (
    ERROR_MAX_LENGTH,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)

PENDING = DeliveryStatus.PENDING.value
_DELIVERIES = qualified(WebhookDelivery.__table__)  # type: ignore[arg-type]
_SUBSCRIPTIONS = qualified(WebhookSubscription.__table__)  # type: ignore[arg-type]
_FAN_OUT = f"""
INSERT INTO {_DELIVERIES} (subscription_id, event_id, event_type, body)
SELECT id, $1, $2, $3 FROM {_SUBSCRIPTIONS}
WHERE $2 = ANY(events) AND (all_users OR owner_id = $4)
ON CONFLICT (subscription_id, event_id) DO NOTHING
RETURNING id
"""  # noqa: S608 - table names from the model, values as parameters


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    body: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None  # until its overlap window ends, after a rotation

    @property
    def signing_secrets(self) -> tuple[str, ...]:
        if self.previous_secret is None:
            return (self.secret,)
        return (self.secret, self.previous_secret)


class WebhookRepository(Repository):
    """Subscriptions and their deliveries: fanned out by the handlers, claimed and settled by
    the dispatcher, read by the API."""

    async def add_subscription(
        self,
        *,
        owner_id: str,
        all_users: bool,
        url: str,
        events: list[str],
        secret: str,
    ) -> WebhookSubscription:
        subscription = WebhookSubscription(
            id=uuid.uuid4(),
            owner_id=owner_id,
            all_users=all_users,
            url=url,
            events=events,
            secret=secret,
        )
        self._session.add(subscription)
        await self._session.flush()
        return subscription

    async def subscription_of(
        self, subscription_id: uuid.UUID, owner_id: str
    ) -> WebhookSubscription | None:
        """The subscription if it belongs to `owner_id` (someone else's reads as absent)."""
        query = select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.owner_id == owner_id
        )
        return (await self._session.scalars(query)).one_or_none()

    async def subscriptions_of(
        self, owner_id: str, *, after: PageKey | None, limit: int
    ) -> Sequence[WebhookSubscription]:
        """Up to `limit` of the owner's subscriptions, newest first, strictly after `after`."""
        query = select(WebhookSubscription).where(WebhookSubscription.owner_id == owner_id)
        if after is not None:
            query = query.where(
                sa_tuple(WebhookSubscription.created_at, WebhookSubscription.id)
                < sa_tuple(after.created_at, after.id)
            )
        query = query.order_by(
            WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc()
        ).limit(limit)
        return (await self._session.scalars(query)).all()

    async def _change(
        self, subscription_id: uuid.UUID, owner_id: str, **values: object
    ) -> WebhookSubscription | None:
        statement = (
            update(WebhookSubscription)
            .where(
                WebhookSubscription.id == subscription_id,
                WebhookSubscription.owner_id == owner_id,
            )
            .values(**values)
            .returning(WebhookSubscription)
            .execution_options(populate_existing=True)
        )
        return (await self._session.scalars(statement)).one_or_none()

    async def pause(self, subscription_id: uuid.UUID, owner_id: str) -> WebhookSubscription | None:
        """Paused since the first pause (pausing again changes nothing)."""
        paused_at = func.coalesce(WebhookSubscription.paused_at, func.now())
        return await self._change(subscription_id, owner_id, paused_at=paused_at)

    async def resume(self, subscription_id: uuid.UUID, owner_id: str) -> WebhookSubscription | None:
        return await self._change(subscription_id, owner_id, paused_at=None)

    async def rotate_secret(
        self, subscription_id: uuid.UUID, owner_id: str, *, secret: str, overlap_seconds: float
    ) -> WebhookSubscription | None:
        """`secret` signs from now on; the one it replaces too, for `overlap_seconds` (0: not
        at all). A secret replaced by an earlier rotation stops signing at once."""
        if overlap_seconds <= 0:
            return await self._change(
                subscription_id,
                owner_id,
                secret=secret,
                previous_secret=None,
                previous_secret_expires_at=None,
            )
        return await self._change(
            subscription_id,
            owner_id,
            secret=secret,
            # Postgres evaluates every SET expression against the row as it was.
            previous_secret=WebhookSubscription.secret,
            previous_secret_expires_at=func.now() + timedelta(seconds=overlap_seconds),
        )

    async def delete_subscription(self, subscription_id: uuid.UUID, owner_id: str) -> bool:
        """Delete it with its deliveries (cascade); whether the owner had it."""
        statement = (
            delete(WebhookSubscription)
            .where(
                WebhookSubscription.id == subscription_id,
                WebhookSubscription.owner_id == owner_id,
            )
            .returning(WebhookSubscription.id)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.execute(statement)).first() is not None

    async def delivery_of(
        self, subscription_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id
        )
        return (await self._session.scalars(query)).one_or_none()

    async def redeliver(
        self, subscription_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        """A settled delivery (delivered or failed) pending again, due now, with a fresh attempt
        budget; None when there is no such delivery or it is still pending. The body and the
        event id stay: the subscriber sees the same `webhook-id` and can deduplicate."""
        statement = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status != PENDING,
            )
            .values(status=PENDING, attempts=0, next_attempt_at=func.now(), delivered_at=None)
            .returning(WebhookDelivery)
            .execution_options(populate_existing=True)
        )
        return (await self._session.scalars(statement)).one_or_none()

    async def recent_deliveries(
        self, subscription_id: uuid.UUID, *, limit: int
    ) -> Sequence[WebhookDelivery]:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
        return (await self._session.scalars(query)).all()

    async def fan_out(self, event: CloudEvent, *, user_id: str | None) -> int:
        """One pending delivery of `event` per subscription that wants it: subscribed to its type,
        and owned by the user the event is about or by an admin. Returns how many."""
        rows = await (await sql(self._session)).fetch(
            _FAN_OUT, event.id, event.type, event.to_json().decode(), user_id or ""
        )
        return len(rows)

    async def due_subscriptions(
        self, *, exclude: Sequence[uuid.UUID], limit: int
    ) -> list[uuid.UUID]:
        """Subscriptions not paused with deliveries due, the one waiting longest first."""
        query = (
            select(WebhookDelivery.subscription_id)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= func.now(),
                WebhookSubscription.paused_at.is_(None),
            )
            .group_by(WebhookDelivery.subscription_id)
            .order_by(func.min(WebhookDelivery.next_attempt_at))
            .limit(limit)
        )
        if exclude:
            query = query.where(WebhookDelivery.subscription_id.not_in(exclude))
        return list((await self._session.scalars(query)).all())

    async def claim(
        self, subscription_id: uuid.UUID, *, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        """Up to `limit` due deliveries of one subscription, oldest first, leased to the caller
        (none once the subscription is paused)."""
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt_at <= func.now(),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = await self._session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(due),
                WebhookSubscription.id == WebhookDelivery.subscription_id,
                WebhookSubscription.paused_at.is_(None),
            )
            .values(
                attempts=WebhookDelivery.attempts + 1,
                next_attempt_at=func.now() + timedelta(seconds=lease_seconds),
            )
            .returning(
                WebhookDelivery.id,
                WebhookDelivery.subscription_id,
                WebhookDelivery.event_id,
                WebhookDelivery.body,
                WebhookDelivery.attempts,
                WebhookSubscription.url,
                WebhookSubscription.secret,
                case(
                    (
                        WebhookSubscription.previous_secret_expires_at > func.now(),
                        WebhookSubscription.previous_secret,
                    ),
                    else_=None,
                ),
            )
            .execution_options(synchronize_session=False)
        )
        return [ClaimedDelivery(*row) for row in rows]

    async def settle(
        self,
        delivery_id: uuid.UUID,
        *,
        status: DeliveryStatus,
        status_code: int | None,
        error: str | None,
        retry_in_seconds: float | None = None,
    ) -> None:
        """Record an attempt's outcome: delivered, failed, or pending again after a delay."""
        values: dict[str, object] = {
            "status": status.value,
            "last_status_code": status_code,
            "last_error": error[:ERROR_MAX_LENGTH] if error else None,
        }
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = func.now()
        if retry_in_seconds is not None:
            values["next_attempt_at"] = func.now() + timedelta(seconds=retry_in_seconds)
        await self._session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
