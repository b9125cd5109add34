"""The CLI's database commands: an idempotent sample catalog and reversible migrations that build
what the models declare."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from redis.asyncio import Redis

from catalog.models import SCHEMA, Base
from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, schema_differences


async def _sample_skus(stack: Stack) -> list[str]:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT sku FROM catalog.products WHERE sku LIKE 'FLEET-%' ORDER BY sku"
        )
    finally:
        await conn.close()
    return [row["sku"] for row in rows]


async def test_seed_inserts_the_sample_catalog_once(
    fleet_database: FleetDatabase,
    catalog_database_url: str,
    client: httpx.AsyncClient,
    redis: Redis,
    redis_prefix: str,
) -> None:
    # The seed's Redis prefix is the one the test client's app uses, as in a real deployment.
    stack = fleet_database.stack.with_(extra_env={"REDIS_KEY_PREFIX": redis_prefix})
    await client.get("/v1/products", params={"limit": 100})
    generation = await redis.get(f"{redis_prefix}products:gen")

    await asyncio.to_thread(run_service_command, stack, "catalog", "seed")
    seeded = await _sample_skus(stack)
    await asyncio.to_thread(run_service_command, stack, "catalog", "seed")

    assert len(seeded) >= 50
    assert seeded[:2] == ["FLEET-0001", "FLEET-0002"]
    assert await _sample_skus(stack) == seeded
    # Seeding dropped the cached list pages, so the new products are visible at once.
    assert await redis.get(f"{redis_prefix}products:gen") != generation
    listed = await _collect_skus(client)
    assert set(seeded) <= listed


async def _collect_skus(client: httpx.AsyncClient) -> set[str]:
    skus: set[str] = set()
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = (await client.get("/v1/products", params=params)).json()
        skus |= {item["sku"] for item in page["items"]}
        if page["next_cursor"] is None:
            return skus
        params = {"limit": 100, "cursor": page["next_cursor"]}


async def _tables(stack: Stack) -> set[str]:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'catalog' "
            "AND tablename <> 'alembic_version'"
        )
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_migrations_downgrade_step_by_step_to_base_and_upgrade_again(
    base_stack: Stack,
) -> None:
    stack = base_stack.with_(database=f"fleet_test_{uuid.uuid4().hex[:10]}", fleet_env="test")
    everything = {"products", "reservations", "outbox", "inbox", "audit_log"}
    await ensure_database(stack)
    try:
        await ensure_roles_and_schemas(stack)
        await asyncio.to_thread(run_service_command, stack, "catalog", "migrate")
        assert await _tables(stack) == everything

        await asyncio.to_thread(run_service_command, stack, "catalog", "downgrade", "0001")
        assert await _tables(stack) == {"products"}

        await asyncio.to_thread(run_service_command, stack, "catalog", "downgrade", "base")
        assert await _tables(stack) == set()

        await asyncio.to_thread(run_service_command, stack, "catalog", "migrate")
        assert await _tables(stack) == everything
    finally:
        await drop_database(stack)


async def test_the_migrations_match_the_models(catalog_database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do: every index the models
    declare (the retention indexes the purge relies on among them) was built by a migration."""
    diff = await schema_differences(catalog_database_url, SCHEMA, Base.metadata)
    assert diff == [], "\n".join(map(str, diff))
