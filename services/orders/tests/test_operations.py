"""Operating the service: relay to the broker, readiness, migrations and the DLQ command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
from orders_test_support import catalog_event

from chassis.messaging.dlq import list_dead_letters
from contracts.events import StockRejectedV1
from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.stack import Stack
from fleetctl.testing import Bus, FleetDatabase, eventually, schema_differences
from orders.models import SCHEMA, Base

TABLES = ("orders", "order_items", "idempotency_keys", "outbox", "inbox")


async def test_relay_publishes_the_staged_order_placed_to_the_exchange(
    bus: Bus, customer: Any, place: Any
) -> None:
    async with bus.tap("order.placed.v1") as queue:
        order = await place()
        message = await Bus.message_about(queue, order["id"])

    event = json.loads(message.body)
    assert message.type == "order.placed.v1"
    assert message.message_id == event["id"]
    assert (event["type"], event["subject"]) == ("order.placed.v1", order["id"])
    assert event["data"]["order_id"] == order["id"]
    assert event["data"]["user_id"] == customer.id
    assert event["data"]["items"] == order["items"]


async def test_readiness_checks_postgres_the_broker_connection_and_the_loops(client: Any) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "postgres": "ok",
            "rabbitmq": "ok",
            "loop:outbox_relay": "ok",
            "loop:retention": "ok",
            "loop:dlq_depth": "ok",
            "loop:order_timeout_sweep": "ok",
        },
    }


async def _tables(stack: Stack) -> set[str]:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'orders'"
        )
    finally:
        await conn.close()
    return {row["table_name"] for row in rows}


async def test_migration_downgrades_to_the_baseline_and_upgrades_again(base_stack: Stack) -> None:
    stack = base_stack.with_(database=f"fleet_test_{uuid.uuid4().hex[:10]}", fleet_env="test")
    await ensure_database(stack)
    try:
        await ensure_roles_and_schemas(stack)
        await asyncio.to_thread(run_service_command, stack, "orders", "migrate")
        assert set(TABLES) <= await _tables(stack)

        await asyncio.to_thread(run_service_command, stack, "orders", "downgrade", "0001")
        assert await _tables(stack) == {"alembic_version"}

        await asyncio.to_thread(run_service_command, stack, "orders", "migrate")
        assert set(TABLES) <= await _tables(stack)
    finally:
        await drop_database(stack)


async def test_dlq_command_lists_and_replays_dead_letters(
    client: Any,
    fleet_database: FleetDatabase,
    bus: Bus,
    broker_namespace: dict[str, Any],
    make_settings: Any,
) -> None:
    stray = StockRejectedV1(order_id=uuid.uuid4(), reason="not enough stock")
    event = catalog_event(stray, subject=str(stray.order_id))
    await bus.publish(event)

    async def dead_lettered() -> bool:
        letters = await list_dead_letters(make_settings(), "orders")
        return any(letter.message_id == str(event.id) for letter in letters)

    await eventually(dead_lettered, interval=0.2)
    env = {
        **os.environ,
        **fleet_database.stack.env_for("orders"),
        "AMQP_EXCHANGE": broker_namespace["amqp_exchange"],
        "AMQP_QUEUE_PREFIX": broker_namespace["amqp_queue_prefix"],
        "AMQP_QUEUE_EXPIRES_MS": "600000",
        "CONSUMER_RETRY_DELAYS_MS": "[50,100]",
    }

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "orders", "dlq", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    listed = await asyncio.to_thread(cli, "list")
    replayed = await asyncio.to_thread(cli, "replay", "--id", str(event.id))

    assert f'"id": "{event.id}"' in listed
    assert '"type": "stock.rejected.v1"' in listed
    assert f'"id": "{event.id}"' in replayed
    assert replayed.strip().endswith("# 1 replayed")


async def test_the_migrations_match_the_models(orders_database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do: every table, column and index
    the models declare (the retention indexes the purge relies on among them) was migrated."""
    diff = await schema_differences(orders_database_url, SCHEMA, Base.metadata)
    assert diff == [], "\n".join(map(str, diff))
