"""Rejects orders that waited too long for catalog's answer.

Each replica runs a sweeper; pending orders past the timeout are claimed with `FOR UPDATE SKIP
LOCKED`, so replicas share the work instead of fighting over it, and an order whose answer is
being handled right now is left to that handler. A `stock.reserved` arriving after the timeout
is compensated by the handler (the stock is released).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from orders import saga
from orders.repository import OrderRepository

BATCH_SIZE = 100

log = get_logger(__name__)


async def reject_overdue(
    sessions: async_sessionmaker[AsyncSession], *, timeout_seconds: float
) -> int:
    """Reject one batch of overdue pending orders; how many were rejected."""
    async with UnitOfWork(sessions) as uow:
        overdue = await OrderRepository(uow.session).lock_overdue(
            older_than_seconds=timeout_seconds, limit=BATCH_SIZE
        )
        for order in overdue:
            await saga.reject(uow.session, order, saga.TIMED_OUT)
        await uow.commit()
    for order in overdue:
        log.info("order_timed_out", order_id=str(order.id))
    return len(overdue)


async def sweep_forever(
    sessions: async_sessionmaker[AsyncSession], *, timeout_seconds: float, every_seconds: float
) -> None:
    """Until cancelled: reject overdue orders, then wait; survives database outages."""
    while True:
        try:
            while await reject_overdue(sessions, timeout_seconds=timeout_seconds) == BATCH_SIZE:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("order_timeout_sweep_failed", error=type(exc).__name__, detail=str(exc))
        await asyncio.sleep(every_seconds)
