"""Orders and idempotency keys in Postgres.

State changes of an existing order go through :meth:`OrderRepository.lock` (`SELECT ... FOR
UPDATE`), so a customer's cancel and catalog's answer racing for the same order are serialised:
the second sees the first one's outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from chassis.pagination import PageKey
from orders.models import IdempotencyKey, Order, OrderItem, OrderStatus


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        order_id: uuid.UUID,
        user_id: uuid.UUID,
        lines: Sequence[tuple[uuid.UUID, int, int]],
        currency: str,
    ) -> Order:
        """A pending order of `(product_id, quantity, unit_price_cents)` lines."""
        order = Order(
            id=order_id,
            user_id=user_id,
            status=OrderStatus.PENDING.value,
            total_cents=sum(quantity * unit for _, quantity, unit in lines),
            currency=currency,
            reason=None,
            items=[
                OrderItem(product_id=p, position=i, quantity=q, unit_price_cents=u)
                for i, (p, q, u) in enumerate(lines)
            ],
        )
        self._session.add(order)
        await self._session.flush()
        return order

    async def get_for(self, order_id: uuid.UUID, user_id: uuid.UUID) -> Order | None:
        """The order if it belongs to the user (someone else's reads as absent)."""
        query = (
            select(Order)
            .where(Order.id == order_id, Order.user_id == user_id)
            .options(selectinload(Order.items))
        )
        return (await self._session.scalars(query)).one_or_none()

    async def lock(self, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Order | None:
        """The order, row-locked until the transaction ends; `user_id` restricts to its owner."""
        query = (
            select(Order)
            .where(Order.id == order_id)
            .options(selectinload(Order.items))
            .with_for_update(of=Order)
        )
        if user_id is not None:
            query = query.where(Order.user_id == user_id)
        return (await self._session.scalars(query)).one_or_none()

    async def lock_overdue(self, *, older_than_seconds: float, limit: int) -> Sequence[Order]:
        """Pending orders placed longer ago than that, locked; rows another replica is already
        handling are skipped, not waited for."""
        query = (
            select(Order)
            .where(
                Order.status == OrderStatus.PENDING.value,
                Order.created_at < func.now() - timedelta(seconds=older_than_seconds),
            )
            .order_by(Order.created_at)
            .limit(limit)
            .options(selectinload(Order.items))
            .with_for_update(of=Order, skip_locked=True)
        )
        return (await self._session.scalars(query)).all()

    async def page_for(
        self, user_id: uuid.UUID, *, after: PageKey | None, limit: int
    ) -> Sequence[Order]:
        """Up to `limit` of the user's orders, newest first, strictly after `after`."""
        query = (
            select(Order)
            .where(Order.user_id == user_id)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .options(selectinload(Order.items))
        )
        if after is not None:
            query = query.where(
                tuple_(Order.created_at, Order.id) < tuple_(after.created_at, after.id)
            )
        return (await self._session.scalars(query)).all()

    async def set_status(self, order: Order, status: OrderStatus, reason: str | None) -> None:
        """Move a locked order to `status`; its `updated_at` becomes the database's now."""
        values = (
            await self._session.execute(
                update(Order)
                .where(Order.id == order.id)
                .values(status=status.value, reason=reason, updated_at=func.now())
                .returning(Order.updated_at)
                .execution_options(synchronize_session=False)
            )
        ).one()
        # The row is already written: update the loaded object without making it dirty again.
        set_committed_value(order, "status", status.value)
        set_committed_value(order, "reason", reason)
        set_committed_value(order, "updated_at", values.updated_at)


class IdempotencyRepository:
    """Keys live for a TTL: an expired key reads as absent, and recording the key again takes
    its place, whether or not the purge deleted it yet."""

    def __init__(self, session: AsyncSession, *, ttl: timedelta) -> None:
        self._session = session
        self._ttl = ttl

    async def find(self, user_id: uuid.UUID, key: str) -> IdempotencyKey | None:
        query = select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > func.now() - self._ttl,
        )
        return (await self._session.scalars(query)).one_or_none()

    async def record(
        self,
        *,
        user_id: uuid.UUID,
        key: str,
        request_hash: str,
        order_id: uuid.UUID,
        status: int,
        body: dict[str, Any],
    ) -> bool:
        """Store the response to the key; False if another request stored one first (the
        unique key decides; a concurrent insert waits for the other transaction's outcome).
        An expired key is overwritten, so it starts a TTL of its own."""
        statement = insert(IdempotencyKey).values(
            user_id=user_id,
            key=key,
            request_hash=request_hash,
            order_id=order_id,
            response_status=status,
            response_body=body,
        )
        fresh = statement.excluded
        upsert = statement.on_conflict_do_update(
            index_elements=["user_id", "key"],
            set_={
                "request_hash": fresh.request_hash,
                "order_id": fresh.order_id,
                "response_status": fresh.response_status,
                "response_body": fresh.response_body,
                "created_at": func.now(),
            },
            # A live key is left alone (the caller loses the race); the condition is re-read
            # after waiting for a concurrent writer, so two requests cannot both take it over.
            where=IdempotencyKey.created_at <= func.now() - self._ttl,
        ).returning(IdempotencyKey.user_id)
        return (await self._session.execute(upsert)).first() is not None
