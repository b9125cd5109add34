"""`python -m catalog dlq list|replay`: what could not be handled is shown and can be re-driven."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika

from chassis.messaging.topology import Names
from fleetctl.testing import FleetDatabase

Bus = Any  # the `bus` fixture: tap, publish and read the test exchange


def _dlq(database: FleetDatabase, broker: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        **database.stack.env_for("catalog"),
        "AMQP_EXCHANGE": broker["amqp_exchange"],
        "AMQP_QUEUE_PREFIX": broker["amqp_queue_prefix"],
        "AMQP_QUEUE_EXPIRES_MS": str(broker["amqp_queue_expires_ms"]),
        "CONSUMER_RETRY_DELAYS_MS": json.dumps(broker["consumer_retry_delays_ms"]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "catalog", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "failed_at" in line]  # logs may share stdout


async def _depth(amqp_url: str, queue: str) -> int:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def test_dead_letters_are_listed_with_their_reason_and_replayed_by_id(
    make_settings: Callable[..., Any],
    run_app: Callable[..., Any],
    own_broker: dict[str, Any],
    fleet_database: FleetDatabase,
    bus: Bus,
) -> None:
    settings = make_settings(**own_broker)
    names = Names.of(settings, "catalog")
    broken = [str(uuid.uuid4()), str(uuid.uuid4())]

    async with run_app(settings):
        channel_bus = bus.on(settings.amqp_exchange)
        await channel_bus.publish_raw(b"not json", message_id=broken[0], key="order.placed.v1")
        await channel_bus.publish_raw(
            b'{"specversion": "1.0", "source": "/x", "type": "order.placed.v1", "data": {}}',
            message_id=broken[1],
            key="order.placed.v1",
        )
        for _ in range(100):
            if await _depth(settings.amqp_url, names.dlq) == 2:
                break
            await asyncio.sleep(0.05)

    listed = await asyncio.to_thread(_dlq, fleet_database, own_broker, "list")
    replayed = await asyncio.to_thread(
        _dlq, fleet_database, own_broker, "replay", "--id", broken[0]
    )
    left = await asyncio.to_thread(_dlq, fleet_database, own_broker, "list")

    assert sorted(letter["id"] for letter in listed) == sorted(broken)
    reasons = {letter["id"]: letter["error"] for letter in listed}
    assert reasons[broken[0]].startswith("InvalidEventError")
    assert "does not match its schema" in reasons[broken[1]]
    assert [letter["id"] for letter in replayed] == [broken[0]]
    assert [letter["id"] for letter in left] == [broken[1]]
    assert await _depth(settings.amqp_url, names.queue) == 1
