"""The outbox relay draining a backlog (after a broker outage, say): how fast committed events
leave, next to the raw confirmed-publish rate of the same broker measured in the same run.

The relay is the chassis' own (`chassis.messaging.relay.OutboxRelay`), on an outbox table shaped
like the services' (their migrations' indexes included) in a throw-away schema, publishing to a
quorum queue in a throw-away namespace; events have the size of real ones, two per subject.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aio_pika
import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from chassis.messaging.outbox import Outbox
from chassis.messaging.relay import OutboxRelay

_BODY = {
    "specversion": "1.0",
    "source": "/fleet/orders",
    "type": "order.placed.v1",
    "datacontenttype": "application/json",
    "data": {
        "order_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "items": [{"product_id": str(uuid.uuid4()), "quantity": 1, "unit_price_cents": 2490}],
        "total_cents": 2490,
        "currency": "EUR",
    },
}


async def drain_rate(admin_dsn: str, amqp_url: str, *, events: int) -> float:
    """Events per second the relay publishes (confirmed) and marks, from a backlog of `events`."""
    schema = f"bench_relay_{uuid.uuid4().hex[:8]}"
    metadata = sa.MetaData(schema=schema)
    outbox = Outbox(metadata, source="/fleet/bench", retention_index=True, pending_index=True)
    engine = create_async_engine(admin_dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    conn = await asyncpg.connect(admin_dsn)
    connection = await aio_pika.connect_robust(amqp_url)
    exchange_name = f"bench.relay.{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        async with engine.begin() as ddl:
            await ddl.run_sync(metadata.create_all)
        await conn.execute(
            f"INSERT INTO {schema}.outbox (event_id, event_type, subject, body) "
            "SELECT gen_random_uuid(), 'order.placed.v1', (n / 2)::text, $1::jsonb "
            "FROM generate_series(1, $2) AS n",
            json.dumps(_BODY),
            events,
        )
        await conn.execute(f"VACUUM ANALYZE {schema}.outbox")
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, auto_delete=True
        )
        queue = await channel.declare_queue(
            exchange_name, durable=True, arguments={"x-queue-type": "quorum", "x-expires": 600_000}
        )
        await queue.bind(exchange, routing_key="#")
        relay = OutboxRelay(outbox=outbox, exchange=exchange, dsn=admin_dsn, poll_seconds=0.2)
        started = time.monotonic()
        relay.loop.start()
        try:
            while True:
                left = await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
                )
                if left == 0:
                    break
                await asyncio.sleep(0.1)
        finally:
            await relay.loop.stop()
        rate = events / (time.monotonic() - started)
        await queue.delete(if_unused=False, if_empty=False)
        return rate
    finally:
        await connection.close()
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
        await engine.dispose()
