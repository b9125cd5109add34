"""Operating the worker: probes, metrics, reversible migrations and the dead-letter CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from worker_sinks import Mailbox
from worker_test_support import Bus, event_of

from contracts.events import OrderConfirmedV1
from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, eventually, schema_differences
from worker.models import SCHEMA, Base

Customer = Any  # conftest's Customer


async def test_ready_when_postgres_rabbitmq_and_the_bucket_are_reachable_and_its_loops_progress(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "postgres": "ok",
        "rabbitmq": "ok",
        "loop:mail_sender": "ok",
        "loop:webhook_dispatcher": "ok",
        "loop:retention": "ok",
        "loop:dlq_depth": "ok",
        "loop:outbox_relay": "ok",
        "loop:export_deadline": "ok",
        "loop:reconciliation_schedule": "ok",
        "loop:command_queue_depth": "ok",
        "object-storage": "ok",
    }


async def test_metrics_expose_email_and_webhook_counters(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert 'webhook_deliveries_total{outcome="delivered"}' in text
    assert "webhook_delivery_duration_seconds_bucket" in text
    assert "worker_emails_total" in text


async def _tables(stack: Stack) -> set[str]:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'worker' "
            "AND tablename <> 'alembic_version'"
        )
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_migrations_downgrade_to_the_baseline_and_upgrade_again(base_stack: Stack) -> None:
    stack = base_stack.with_(database=f"fleet_test_{uuid.uuid4().hex[:10]}", fleet_env="test")
    everything = {
        "users",
        "notifications",
        "webhook_subscriptions",
        "webhook_deliveries",
        "inbox",
        "audit_log",
        "outbox",
        "exports",
        "reconciliations",
        "schedules",
    }
    await ensure_database(stack)
    try:
        await ensure_roles_and_schemas(stack)
        await asyncio.to_thread(run_service_command, stack, "worker", "migrate")
        assert await _tables(stack) == everything

        await asyncio.to_thread(run_service_command, stack, "worker", "downgrade", "0001")
        assert await _tables(stack) == set()

        await asyncio.to_thread(run_service_command, stack, "worker", "migrate")
        assert await _tables(stack) == everything
    finally:
        await drop_database(stack)


def _run_dlq(database: FleetDatabase, broker: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        **database.stack.env_for("worker"),
        "AMQP_EXCHANGE": broker["amqp_exchange"],
        "AMQP_QUEUE_PREFIX": broker["amqp_queue_prefix"],
        "AMQP_QUEUE_EXPIRES_MS": str(broker["amqp_queue_expires_ms"]),
        "CONSUMER_RETRY_DELAYS_MS": json.dumps(broker["consumer_retry_delays_ms"]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "worker", "dlq", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "failed_at" in line]  # logs may share stdout


@pytest.fixture
def dlq(fleet_database: FleetDatabase, broker_namespace: dict[str, Any]) -> Any:
    """`python -m worker dlq ...` against the test session's queues; the printed letters."""

    async def run(*args: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(_run_dlq, fleet_database, broker_namespace, *args)

    return run


async def test_an_order_of_a_never_registered_user_is_dead_lettered_and_replayable(
    start_worker: Callable[..., Any],
    customer: Customer,
    bus: Bus,
    dlq: Any,
    mailbox: Mailbox,
) -> None:
    confirmed = event_of(
        OrderConfirmedV1(order_id=uuid.uuid4(), user_id=customer.id, total_cents=1, currency="EUR")
    )
    async with start_worker():
        await bus.publish(confirmed)

        async def dead_lettered() -> bool:
            letters = await dlq("list")
            return any(letter["id"] == str(confirmed.id) for letter in letters)

        await eventually(dead_lettered, timeout=20, interval=0.3)
        [letter] = [letter for letter in await dlq("list") if letter["id"] == str(confirmed.id)]
        assert "UnknownUser" in letter["error"]

        await bus.register(customer)
        replayed = await dlq("replay", "--id", str(confirmed.id))
        assert [r["id"] for r in replayed] == [str(confirmed.id)]
        await eventually(lambda: len(mailbox.about(confirmed.id)) == 1)


async def test_the_migrations_match_the_models(worker_database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do: every table, column and index
    the models declare (the retention indexes the purge relies on among them) was migrated."""
    diff = await schema_differences(worker_database_url, SCHEMA, Base.metadata)
    assert diff == [], "\n".join(map(str, diff))
