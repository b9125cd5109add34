"""Create the fleet's database, one role and schema per service, run migrations, seed data.

Every step is idempotent, so `make up` and `make test` simply run it every time. Each service's
role owns its schema and nothing else: it cannot even look into another service's schema, which is
what keeps "each service owns its data" true in the database and not only in the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import asyncpg

from fleetctl.stack import DB_SERVICES, ServiceSpec, Stack, role_password


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        msg = f"refusing unsafe identifier {name!r}"
        raise ValueError(msg)
    return f'"{name}"'


async def ensure_database(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.maintenance_dsn, timeout=5)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", stack.database)
        if not exists:
            # Another bootstrap may create it between our check and our create.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_ident(stack.database)}")
    finally:
        await conn.close()


async def _ensure_role(conn: asyncpg.Connection, service: ServiceSpec) -> None:
    password = role_password(service).replace("'", "''")
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service.role)
    if not exists:
        # A bootstrap of another database may create it between our check and our create.
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await conn.execute(
                f"CREATE ROLE {_ident(service.role)} LOGIN PASSWORD '{password}' "
                "NOSUPERUSER NOCREATEDB NOCREATEROLE"
            )


async def ensure_roles_and_schemas(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        # Concurrent GRANTs on one object fail with "tuple concurrently updated": one bootstrap
        # of a database at a time.
        await conn.execute("SELECT pg_advisory_lock(4242)")
        db = _ident(stack.database)
        await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in DB_SERVICES:
            assert service.schema is not None
            role, schema = _ident(service.role), _ident(service.schema)
            await _ensure_role(conn, service)
            await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
            await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"ALTER ROLE {role} IN DATABASE {db} SET search_path = {schema}")
    finally:
        await conn.close()


def run_service_command(stack: Stack, service: str, *args: str, timeout: float = 120) -> None:
    """Run `python -m <service> <args>` with the service's own environment (its own DB role)."""
    env = {**os.environ, **stack.env_for(service)}
    result = subprocess.run(
        [sys.executable, "-m", service, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        msg = f"`python -m {service} {' '.join(args)}` failed:\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)


async def bootstrap(stack: Stack, *, seed: bool) -> None:
    await ensure_database(stack)
    await ensure_roles_and_schemas(stack)
    commands: list[tuple[str, tuple[str, ...]]] = [(s.name, ("migrate",)) for s in DB_SERVICES]
    commands.append(("auth", ("keys", "ensure")))
    if seed:
        commands += [("auth", ("seed-admin",)), ("catalog", ("seed",))]
    for service, args in commands:
        await asyncio.to_thread(run_service_command, stack, service, *args)


async def drop_database(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.maintenance_dsn, timeout=5)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(stack.database)} WITH (FORCE)")
    finally:
        await conn.close()
