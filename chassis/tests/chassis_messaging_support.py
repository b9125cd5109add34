"""A throw-away schema and broker namespace for the messaging tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aio_pika
import asyncpg
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork, create_engine, session_factory
from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox
from chassis.messaging.runtime import BrokerSettings
from contracts.events import EventPayload, UserRegisteredV1
from fleetctl.testing import FleetDatabase, new_broker_namespace


@dataclass
class Bench:
    """Everything a messaging test needs: schema, tables, sessions, settings."""

    settings: BrokerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    inbox: Inbox
    effects: sa.Table
    schema: str

    async def stage(self, payload: EventPayload, *, subject: str | None = None) -> str:
        async with UnitOfWork(self.sessions) as uow:
            event = await self.outbox.add(uow.session, payload, subject=subject)
            await uow.commit()
        return str(event.id)

    async def effects_count(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(sa.select(sa.func.count()).select_from(self.effects))
                ).scalar_one()
            )

    async def unpublished(self) -> int:
        async with self.engine.connect() as conn:
            table = self.outbox.table
            query = sa.select(sa.func.count()).where(table.c.published_at.is_(None))
            return int((await conn.execute(query)).scalar_one())


def user_registered(email: str = "someone@example.com") -> UserRegisteredV1:
    return UserRegisteredV1(user_id=uuid.uuid4(), email=email)


@asynccontextmanager
async def messaging_bench(
    db: FleetDatabase, *, retention_index: bool = False
) -> AsyncIterator[Bench]:
    suffix = uuid.uuid4().hex[:10]
    schema = f"msg_{suffix}"
    admin = await asyncpg.connect(db.stack.admin_dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION fleet_orders')
    finally:
        await admin.close()
    metadata = sa.MetaData(schema=schema)
    outbox = Outbox(
        metadata, source="/fleet/test", retention_index=retention_index, pending_index=True
    )
    inbox = Inbox(metadata, retention_index=retention_index)
    effects = sa.Table(
        "effects",
        metadata,
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
    )
    url = db.url_for("orders")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    settings = BrokerSettings(
        service_name="test",
        database_url=url,
        **new_broker_namespace(),
        outbox_poll_seconds=5.0,
    )
    try:
        yield Bench(settings, engine, session_factory(engine), outbox, inbox, effects, schema)
    finally:
        await engine.dispose()


@asynccontextmanager
async def tap(settings: BrokerSettings, routing_key: str = "#") -> AsyncIterator[AbstractQueue]:
    """A private queue bound to the test exchange: what was really published."""
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            settings.amqp_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=routing_key)
        yield queue
    finally:
        await connection.close()


async def collect(
    queue: AbstractQueue, count: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    got: list[AbstractIncomingMessage] = []

    async def take() -> None:
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                got.append(message)
                if len(got) >= count:
                    return

    await asyncio.wait_for(take(), timeout)
    return got
