"""Pytest fixtures shared by every package's tests (loaded by the root `conftest.py`).

The databases and broker keep state between runs, so nothing here assumes an empty server: each
test session works in a database of its own (`fleet_test_<random>`, dropped afterwards) and a Redis
key prefix of its own.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import uvicorn

from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.stack import Stack, spec
from fleetctl.tokens import TestTokenIssuer


@dataclass
class FleetDatabase:
    """A fresh database with every service's role and schema; migrations on request."""

    stack: Stack
    migrated: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.stack.database

    def url_for(self, service: str) -> str:
        """SQLAlchemy URL connecting as the service's own role."""
        return self.stack.database_url(spec(service))

    def migrate(self, service: str) -> str:
        """Apply the service's migrations (once per session) and return its URL."""
        if service not in self.migrated:
            run_service_command(self.stack, service, "migrate")
            self.migrated.add(service)
        return self.url_for(service)


def unique_suffix() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def base_stack() -> Stack:
    return Stack.from_env()


@pytest.fixture(scope="session")
def fleet_database(base_stack: Stack) -> Iterator[FleetDatabase]:
    stack = base_stack.with_(database=f"fleet_test_{unique_suffix()}", fleet_env="test")

    async def create() -> None:
        await ensure_database(stack)
        await ensure_roles_and_schemas(stack)

    asyncio.run(create())
    try:
        yield FleetDatabase(stack)
    finally:
        asyncio.run(drop_database(stack))


@pytest.fixture(scope="session")
def broker_namespace() -> dict[str, object]:
    """Settings that give a test session its own exchange and queues on the shared broker
    (queues left behind by a killed run expire by themselves)."""
    suffix = unique_suffix()
    return {
        "amqp_exchange": f"test.{suffix}.events",
        "amqp_queue_prefix": f"test.{suffix}.",
        "amqp_queue_expires_ms": 600_000,
        "consumer_retry_delays_ms": [50, 100],
    }


@pytest.fixture
def redis_prefix() -> str:
    """A Redis key prefix no other test (or run) uses."""
    return f"test:{unique_suffix()}:"


@pytest.fixture
def token_issuer() -> Iterator[TestTokenIssuer]:
    """A real JWKS endpoint on loopback plus a signer for access tokens."""
    issuer = TestTokenIssuer()
    try:
        yield issuer
    finally:
        issuer.close()


@contextmanager
def serve_in_thread(
    app: Any, *, port: int = 0, lifespan: Literal["auto", "on", "off"] = "off"
) -> Iterator[str]:
    """Serve an ASGI `app` with uvicorn on loopback (`port`, or a free one) in a thread with its
    own event loop until the block ends; yields its URL. A real HTTP peer for tests, no mocks."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        loop="asyncio",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            msg = "test server did not start"
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@asynccontextmanager
async def app_client(app: Any, *, base_url: str = "http://test") -> AsyncIterator[Any]:
    """An `httpx.AsyncClient` talking to `app` in process, with the app's lifespan running
    (pools, consumers, background loops started, and stopped when the block ends). Exceptions
    the app does not handle come back as its 500 answers, as a real server gives them."""
    import httpx  # noqa: PLC0415 - only the service tests need it

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url) as client,
    ):
        yield client


async def schema_differences(database_url: str, schema: str, metadata: Any) -> list[Any]:
    """What Alembic's autogenerate would change to make the migrated `schema` match `metadata`
    (the service's models): empty when every table, column and index the models declare was
    built by a migration, and nothing else exists."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415 - only these tests need it
    from alembic.migration import MigrationContext  # noqa: PLC0415
    from sqlalchemy.engine import Connection  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    def include(name: str | None, kind: str, _: Any) -> bool:
        if kind == "schema":
            return name == schema
        return not (kind == "table" and name == "alembic_version")

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_schemas": True, "include_name": include}
        )
        return list(compare_metadata(context, metadata))

    # Out of the role's own search_path, so the schema is reflected under its name.
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": "public"}}
    )
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences)
    finally:
        await engine.dispose()
