"""Rejects orders that waited too long for catalog's answer.

Each replica runs a sweeper; pending orders past the timeout are claimed with `FOR UPDATE SKIP
LOCKED`, so replicas share the work instead of fighting over it, and an order whose answer is
being handled right now is left to that handler. A `stock.reserved` arriving after the timeout
is compensated by the handler (the stock is released).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from orders import saga
from orders.repository import OrderRepository

BATCH_SIZE = 100

log = get_logger(__name__)


async def reject_overdue(
    sessions: async_sessionmaker[AsyncSession], *, timeout_seconds: float
) -> int:
    """Reject one batch of overdue pending orders; how many were rejected."""
    async with UnitOfWork(sessions) as uow:
        overdue = await uow.repository(OrderRepository).lock_overdue(
            older_than_seconds=timeout_seconds, limit=BATCH_SIZE
        )
        for order in overdue:
            await saga.time_out(uow, order)
        await uow.commit()
    for order in overdue:
        log.info("order_timed_out", order_id=str(order.id))
    return len(overdue)


def timeout_sweeper(
    sessions: async_sessionmaker[AsyncSession], *, timeout_seconds: float, every_seconds: float
) -> BackgroundLoop:
    """The background loop that rejects overdue orders, a batch per step, every
    `every_seconds` (at once again while batches come back full)."""

    async def step() -> bool:
        return await reject_overdue(sessions, timeout_seconds=timeout_seconds) == BATCH_SIZE

    return BackgroundLoop("order_timeout_sweep", step, every_seconds=every_seconds)
