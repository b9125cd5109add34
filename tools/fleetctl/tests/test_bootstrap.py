"""Each service's database role owns its schema and can touch nothing else."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from fleetctl.bootstrap import ensure_roles_and_schemas
from fleetctl.testing import FleetDatabase


def _dsn(db: FleetDatabase, service: str) -> str:
    return db.url_for(service).replace("postgresql+asyncpg://", "postgresql://")


async def test_catalog_role_cannot_read_auth_users(fleet_database: FleetDatabase) -> None:
    fleet_database.migrate("auth")
    conn = await asyncpg.connect(_dsn(fleet_database, "catalog"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM auth.users")
    finally:
        await conn.close()


async def test_auth_role_reads_its_own_tables(fleet_database: FleetDatabase) -> None:
    fleet_database.migrate("auth")
    conn = await asyncpg.connect(_dsn(fleet_database, "auth"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM auth.users") >= 0
    finally:
        await conn.close()


async def test_service_roles_cannot_create_objects_outside_their_schema(
    fleet_database: FleetDatabase,
) -> None:
    conn = await asyncpg.connect(_dsn(fleet_database, "orders"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE catalog.sneaky (id int)")
        # ... but a table in its own schema is fine, and lands there by default. It is dropped
        # again: the session's database is shared, and orders' model-vs-migration test would
        # rightly see it as a table no migration made.
        await conn.execute("CREATE TABLE IF NOT EXISTS mine (id int)")
        try:
            assert await conn.fetchval("SELECT to_regclass('orders.mine') IS NOT NULL")
        finally:
            await conn.execute("DROP TABLE orders.mine")
    finally:
        await conn.close()


async def test_bootstrap_is_idempotent_and_safe_to_run_concurrently(
    fleet_database: FleetDatabase,
) -> None:
    stack = fleet_database.stack
    await asyncio.gather(*(ensure_roles_and_schemas(stack) for _ in range(3)))
    await ensure_roles_and_schemas(stack)


def test_migrations_apply_once_and_record_their_version_in_the_service_schema(
    fleet_database: FleetDatabase,
) -> None:
    fleet_database.migrate("orders")

    async def version() -> str | None:
        conn = await asyncpg.connect(_dsn(fleet_database, "orders"))
        try:
            return await conn.fetchval("SELECT version_num FROM orders.alembic_version")  # type: ignore[no-any-return]
        finally:
            await conn.close()

    assert asyncio.run(version())
