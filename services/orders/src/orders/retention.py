"""What orders deletes once it has served its purpose: idempotency keys past their TTL,
published outbox rows and handled-event inbox rows past their retention.

Each replica runs the purge for as long as it serves (started next to the relay); batches are
claimed with `FOR UPDATE SKIP LOCKED`, so replicas share the work (see `chassis.retention`).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.messaging.retention import service_purger
from chassis.retention import Expiry, Purger
from orders.models import IdempotencyKey, inbox, outbox
from orders.settings import OrdersSettings


def idempotency_key_expiry(settings: OrdersSettings) -> Expiry:
    """Keys older than the TTL: a retry with one of them is a new request anyway."""
    return Expiry(
        cast(Table, IdempotencyKey.__table__),
        age=IdempotencyKey.created_at,
        keep=settings.idempotency_key_ttl,
    )


def purger(engine: AsyncEngine, settings: OrdersSettings) -> Purger:
    return service_purger(
        engine, settings, outbox=outbox, inbox=inbox, also=[idempotency_key_expiry(settings)]
    )
