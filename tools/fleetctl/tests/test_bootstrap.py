"""Each service's database role owns its schema and can touch nothing else."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from fleetctl.bootstrap import drop_database, ensure_database, ensure_roles_and_schemas
from fleetctl.stack import DB_SERVICES, Stack
from fleetctl.testing import FleetDatabase, unique_suffix


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


async def _layout(stack: Stack) -> dict[str, tuple[str, list[str]]]:
    """Each service schema of the database: its owner and that role's settings in it."""
    conn = await asyncpg.connect(stack.admin_dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT n.nspname AS schema, r.rolname AS owner, s.setconfig AS settings
            FROM pg_namespace n
            JOIN pg_roles r ON r.oid = n.nspowner
            LEFT JOIN pg_db_role_setting s
              ON s.setrole = r.oid
             AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = $1)
            WHERE n.nspname = ANY($2::text[])
            """,
            stack.database,
            [service.schema for service in DB_SERVICES],
        )
    finally:
        await conn.close()
    return {row["schema"]: (row["owner"], list(row["settings"] or [])) for row in rows}


async def test_bootstrap_is_idempotent_and_safe_to_run_concurrently(base_stack: Stack) -> None:
    stack = base_stack.with_(database=f"fleet_test_{unique_suffix()}", fleet_env="test")
    await ensure_database(stack)
    try:
        # Three bootstraps of a fresh database at once (each `make up`/test session may start
        # one), then another: every one succeeds and they leave the one expected layout.
        await asyncio.gather(*(ensure_roles_and_schemas(stack) for _ in range(3)))
        after_concurrent = await _layout(stack)
        await ensure_roles_and_schemas(stack)

        assert after_concurrent == {
            str(service.schema): (service.role, [f"search_path={service.schema}"])
            for service in DB_SERVICES
        }
        assert await _layout(stack) == after_concurrent
    finally:
        await drop_database(stack)


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
