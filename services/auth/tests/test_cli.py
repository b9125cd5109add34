"""The `python -m auth ...` commands, run as the real subprocesses operators run."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from auth.keyfiles import generate_key, key_files
from auth.keyring import KeyRing, NoSigningKeyError
from auth.main import build_app
from auth.models import SCHEMA, Base
from auth.settings import AuthSettings
from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.testing import schema_differences

pytestmark = pytest.mark.integration


def _auth(fleet_database: Any, *args: str, **env: str) -> None:
    run_service_command(fleet_database.stack.with_(extra_env=env), "auth", *args)


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )


async def _roles(client: httpx.AsyncClient, email: str, password: str) -> list[str]:
    tokens = (await _login(client, email, password)).json()
    me = await client.get(
        "/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    roles: list[str] = me.json()["roles"]
    return roles


async def test_seed_admin_is_idempotent_and_resets_the_password(
    fleet_database: Any, client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    email = new_email()

    _auth(fleet_database, "seed-admin", FLEET_ADMIN_EMAIL=email, FLEET_ADMIN_PASSWORD="first-pw1")
    _auth(fleet_database, "seed-admin", FLEET_ADMIN_EMAIL=email, FLEET_ADMIN_PASSWORD="second-pw")

    assert await _roles(client, email, "second-pw") == ["admin"]
    assert (await _login(client, email, "first-pw1")).status_code == 401


async def test_seed_admin_grants_admin_to_an_existing_account(
    fleet_database: Any, client: httpx.AsyncClient, register: Callable[[], Awaitable[Any]]
) -> None:
    account = await register()

    _auth(
        fleet_database,
        "seed-admin",
        FLEET_ADMIN_EMAIL=account.email.upper(),
        FLEET_ADMIN_PASSWORD=account.password,
    )

    assert await _roles(client, account.email, account.password) == ["admin"]


def test_keys_ensure_creates_one_private_key_only_when_there_is_none(
    fleet_database: Any, tmp_path: Path
) -> None:
    directory = tmp_path / "keys"

    _auth(fleet_database, "keys", "ensure", JWT_KEYS_DIR=str(directory))
    first = key_files(directory)
    _auth(fleet_database, "keys", "ensure", JWT_KEYS_DIR=str(directory))

    assert len(first) == 1
    assert key_files(directory) == first
    (path,) = first.values()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_rotate_adds_a_newer_key_that_becomes_active(
    fleet_database: Any, tmp_path: Path
) -> None:
    directory = tmp_path / "keys"
    generate_key(directory, "k20200101T000000Z")

    _auth(fleet_database, "keys", "rotate", JWT_KEYS_DIR=str(directory))

    ring = KeyRing.load(directory)
    assert len(ring.kids) == 2
    assert ring.active.kid != "k20200101T000000Z"
    assert ring.active.kid.startswith("k20")


async def test_the_app_refuses_to_start_without_a_signing_key(
    auth_database_url: str, tmp_path: Path
) -> None:
    settings = AuthSettings(
        _env_file=None,
        fleet_env="test",
        database_url=auth_database_url,
        jwt_keys_dir=tmp_path / "empty",
    )
    app: FastAPI = build_app(settings)

    with pytest.raises(NoSigningKeyError):
        async with app.router.lifespan_context(app):
            pass


async def test_migrations_downgrade_to_base_and_upgrade_again(fleet_database: Any) -> None:
    """In a database of its own, so the other tests' schema is never dropped under them."""
    stack = fleet_database.stack.with_(database=f"fleet_test_{uuid.uuid4().hex[:10]}")
    await ensure_database(stack)
    await ensure_roles_and_schemas(stack)
    try:
        run_service_command(stack, "auth", "migrate")
        assert await _auth_tables(stack.admin_dsn) == {
            "alembic_version",
            "audit_log",
            "outbox",
            "refresh_tokens",
            "users",
        }

        run_service_command(stack, "auth", "downgrade", "base")
        assert await _auth_tables(stack.admin_dsn) == {"alembic_version"}

        run_service_command(stack, "auth", "migrate")
        assert await _auth_tables(stack.admin_dsn) == {
            "alembic_version",
            "audit_log",
            "outbox",
            "refresh_tokens",
            "users",
        }
    finally:
        await drop_database(stack)


async def _auth_tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'auth'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_the_migrations_match_the_models(auth_database_url: str) -> None:
    """Autogenerate against the migrated schema finds nothing to do."""
    diff = await schema_differences(auth_database_url, SCHEMA, Base.metadata)
    assert diff == [], "\n".join(map(str, diff))
