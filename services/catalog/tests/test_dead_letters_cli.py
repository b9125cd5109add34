"""`python -m catalog dlq list|replay`: what could not be handled is shown (with its age) and can
be re-driven; a letter older than INBOX_RETENTION_DAYS only with `--force`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from chassis.messaging.consumer import ERROR_HEADER, FAILED_AT_HEADER
from chassis.messaging.topology import Names, declare_consumer_queues
from contracts.events import OrderCancelledV1, new_event
from fleetctl.testing import Bus, FleetDatabase, eventually


def _run_dlq(
    database: FleetDatabase, broker: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **database.stack.env_for("catalog"),
        "AMQP_EXCHANGE": broker["amqp_exchange"],
        "AMQP_QUEUE_PREFIX": broker["amqp_queue_prefix"],
        "AMQP_QUEUE_EXPIRES_MS": str(broker["amqp_queue_expires_ms"]),
        "CONSUMER_RETRY_DELAYS_MS": json.dumps(broker["consumer_retry_delays_ms"]),
    }
    return subprocess.run(
        [sys.executable, "-m", "catalog", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _letters(stdout: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "failed_at" in line]  # logs may share stdout


def _dlq(database: FleetDatabase, broker: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    result = _run_dlq(database, broker, *args)
    assert result.returncode == 0, result.stderr
    return _letters(result.stdout)


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
    own_broker_namespace: dict[str, Any],
    fleet_database: FleetDatabase,
    bus: Bus,
) -> None:
    settings = make_settings(**own_broker_namespace)
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

        async def both_dead_lettered() -> bool:
            return await _depth(settings.amqp_url, names.dlq) == 2

        await eventually(both_dead_lettered, timeout=5)

    listed = await asyncio.to_thread(_dlq, fleet_database, own_broker_namespace, "list")
    replayed = await asyncio.to_thread(
        _dlq, fleet_database, own_broker_namespace, "replay", "--id", broken[0]
    )
    left = await asyncio.to_thread(_dlq, fleet_database, own_broker_namespace, "list")

    assert sorted(letter["id"] for letter in listed) == sorted(broken)
    reasons = {letter["id"]: letter["error"] for letter in listed}
    assert reasons[broken[0]].startswith("InvalidEventError")
    assert "does not match its schema" in reasons[broken[1]]
    assert [letter["id"] for letter in replayed] == [broken[0]]
    assert [letter["id"] for letter in left] == [broken[1]]
    assert await _depth(settings.amqp_url, names.queue) == 1


async def _dead_letter_from_days_ago(settings: Any, days: int) -> str:
    """An `order.cancelled` event created `days` ago, dead-lettered a minute later."""
    created = datetime.now(UTC) - timedelta(days=days)
    cancelled = OrderCancelledV1(order_id=uuid.uuid4(), user_id=uuid.uuid4(), reason="r")
    event = new_event(cancelled, source="/fleet/orders").model_copy(update={"time": created})
    names = Names.of(settings, "catalog")
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_consumer_queues(channel, settings, names, [])
        failed_at = (created + timedelta(minutes=1)).isoformat()
        await channel.default_exchange.publish(
            aio_pika.Message(
                event.to_json(),
                headers={ERROR_HEADER: "RuntimeError: boom", FAILED_AT_HEADER: failed_at},
                message_id=str(event.id),
                type=event.type,
            ),
            routing_key=names.dlq,
        )
    finally:
        await connection.close()
    return str(event.id)


async def test_a_letter_older_than_the_inbox_retention_is_replayed_only_with_force(
    make_settings: Callable[..., Any],
    own_broker_namespace: dict[str, Any],
    fleet_database: FleetDatabase,
) -> None:
    settings = make_settings(**own_broker_namespace)
    names = Names.of(settings, "catalog")
    old = await _dead_letter_from_days_ago(settings, 8)

    listed = await asyncio.to_thread(_dlq, fleet_database, own_broker_namespace, "list")
    refused = await asyncio.to_thread(_run_dlq, fleet_database, own_broker_namespace, "replay")
    left_after_refusal = await _depth(settings.amqp_url, names.dlq)
    forced = await asyncio.to_thread(
        _dlq, fleet_database, own_broker_namespace, "replay", "--id", old, "--force"
    )

    assert [(x["id"], x["age"], x["past_inbox_retention"]) for x in listed] == [
        (old, "8d 0h", True)
    ]
    assert refused.returncode == 1
    assert _letters(refused.stdout) == []
    assert "# 0 replayed" in refused.stdout
    assert f"{old} order.cancelled.v1 (age 8d 0h)" in refused.stderr
    assert "INBOX_RETENTION_DAYS (7 days)" in refused.stderr
    assert left_after_refusal == 1
    assert [x["id"] for x in forced] == [old]
    assert await _depth(settings.amqp_url, names.dlq) == 0
    assert await _depth(settings.amqp_url, names.queue) == 1
