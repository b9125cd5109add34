"""Pytest fixtures shared by every package's tests (loaded by the root `conftest.py`).

The databases and broker keep state between runs, so nothing here assumes an empty server: each
test session works in a database of its own (`fleet_test_<random>`, dropped afterwards) and a Redis
key prefix of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import aio_pika
import httpx
import pytest
import uvicorn
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from fleetctl.bootstrap import (
    drop_database,
    ensure_database,
    ensure_roles_and_schemas,
    run_service_command,
)
from fleetctl.s3_emulator import S3Endpoint, unique_bucket
from fleetctl.stack import Stack, spec
from fleetctl.tokens import TestTokenIssuer

if TYPE_CHECKING:
    from contracts.events import CloudEvent


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


# Fixtures that reach a real server (Postgres, Redis, RabbitMQ, or the whole fleet as processes):
# a test that uses one, itself or through another fixture, is an integration test.
SERVER_FIXTURES = frozenset(
    {
        "base_stack",
        "fleet_database",
        "broker_namespace",
        "own_broker_namespace",
        "bus",
        "redis_prefix",
        "running_fleet",
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that needs a server: one that uses a server fixture, and
    every end-to-end test. `pytest -m "not integration"` then runs without any server."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.integration)


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


def new_broker_namespace() -> dict[str, Any]:
    """Broker settings (`amqp_exchange`, `amqp_queue_prefix`, ...) no other test or run shares:
    an exchange and queue names of their own, queues that expire after ten idle minutes (those a
    killed run leaves behind vanish by themselves) and retries fast enough for a test."""
    suffix = unique_suffix()
    return {
        "amqp_exchange": f"test.{suffix}.events",
        "amqp_queue_prefix": f"test.{suffix}.",
        "amqp_queue_expires_ms": 600_000,
        "consumer_retry_delays_ms": [50, 100],
    }


@pytest.fixture(scope="session")
def broker_namespace() -> dict[str, Any]:
    """The test session's own exchange and queues on the shared broker (`new_broker_namespace`)."""
    return new_broker_namespace()


@pytest.fixture
def own_broker_namespace() -> dict[str, Any]:
    """Broker settings of this test alone, for tests that inspect or drain whole queues."""
    return new_broker_namespace()


@pytest.fixture
def bus(base_stack: Stack, broker_namespace: dict[str, Any]) -> Bus:
    """The test session's exchange on the real broker, seen from outside the services."""
    return Bus(base_stack.amqp_url, str(broker_namespace["amqp_exchange"]))


@pytest.fixture
def redis_prefix() -> str:
    """A Redis key prefix no other test (or run) uses."""
    return f"test:{unique_suffix()}:"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Endpoint]:
    """moto's S3 API server on a free loopback port for the whole test session, in a thread of
    the tests' process (`fleetctl.s3_emulator`): a real S3 API over HTTP, no mocked client.
    Tests keep apart by bucket (`s3_settings`, `fleetctl.s3_emulator.unique_bucket`)."""
    from fleetctl.s3_emulator import S3Emulator  # noqa: PLC0415 - moto only where S3 is used

    emulator = S3Emulator().start()
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


@pytest.fixture
def s3_settings(s3_server: S3Endpoint) -> dict[str, Any]:
    """`WithObjectStorage` settings (`s3_endpoint_url`, keys, region, `s3_bucket`...) of a bucket
    no other test uses on the session's S3 server, created when the store opens
    (`s3_create_bucket`): `object_store(Settings(**s3_settings))`, or a service's
    `make_settings(**s3_settings)`. `S3Endpoint.env(bucket)` gives the same as environment."""
    return s3_server.settings(unique_bucket())


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
async def app_client(
    app: Any, *, base_url: str = "http://test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An `httpx.AsyncClient` talking to `app` in process, with the app's lifespan running
    (pools, consumers, background loops started, and stopped when the block ends). Exceptions
    the app does not handle come back as its 500 answers, as a real server gives them."""
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


SettingsT = TypeVar("SettingsT")


@dataclass(frozen=True)
class ServiceUnderTest(Generic[SettingsT]):
    """How one service's tests configure it and run it in process: the settings class, the
    composition root and the settings every test starts from (`fleet_env` is always `test`).

    A service's conftest builds one from its fixtures (database URL, broker namespace, JWKS) and
    derives its `make_settings`/`client` fixtures from it."""

    settings_class: Callable[..., SettingsT]
    build_app: Callable[[SettingsT], Any]
    defaults: Mapping[str, Any]
    base_url: str = "http://test"

    def settings(self, **overrides: Any) -> SettingsT:
        """The service's settings: the defaults, then `overrides`."""
        return self.settings_class(**{"fleet_env": "test", **self.defaults, **overrides})

    def run(self, settings: SettingsT) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        """The app built with `settings`, running (`app_client`) while the block lasts."""
        return app_client(self.build_app(settings), base_url=self.base_url)

    def start(self, **overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        """`run` with the default settings, some of them overridden."""
        return self.run(self.settings(**overrides))


# --- Checks ---------------------------------------------------------------------------------

PROBLEM_JSON = "application/problem+json"


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The answer is an RFC 9457 problem: this status (and problem type `code`), the problem
    media type, the request id of its `X-Request-ID` header and no stack trace. Its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["request_id"], body
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["type"].endswith(f"/{code}"), body["type"]
    assert "Traceback" not in response.text
    return body


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,
    interval: float = 0.05,
) -> None:
    """Wait until `predicate()` (a plain or an async function) holds, checking every `interval`
    seconds; fail after `timeout` seconds. For effects of background work (a consumer, a relay,
    a delivery loop) that a test cannot await directly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > deadline:
            msg = f"condition not met within {timeout}s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)


# --- The broker, seen from outside the services ------------------------------------------------


@dataclass(frozen=True)
class Bus:
    """An exchange on the real RabbitMQ (a test session's own, see `broker_namespace`): publish
    events as a producer's outbox relay does, and tap what the services really published."""

    amqp_url: str
    exchange: str

    def on(self, exchange: str) -> Bus:
        """The same broker, another exchange (a test's own namespace)."""
        return replace(self, exchange=exchange)

    async def _exchange(self, channel: AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def publish(self, *events: CloudEvent) -> None:
        """Publish CloudEvents as a producer's relay does: keyed by the event type, persistent,
        confirmed by the broker."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await self._exchange(channel)
            for event in events:
                message = aio_pika.Message(
                    event.to_json(),
                    message_id=str(event.id),
                    type=event.type,
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await exchange.publish(message, routing_key=event.type)
        finally:
            await connection.close()

    async def publish_raw(self, body: bytes, *, message_id: str, key: str) -> None:
        """Publish any bytes (a message no producer should send)."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            message = aio_pika.Message(body, message_id=message_id, type=key)
            await (await self._exchange(channel)).publish(message, routing_key=key)
        finally:
            await connection.close()

    @asynccontextmanager
    async def tap(self, routing_key: str = "#") -> AsyncIterator[AbstractQueue]:
        """A private queue bound to the exchange: what was really published."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        try:
            channel = await connection.channel()
            # Exclusive: gone with the connection (auto-delete would go with the first reader).
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(await self._exchange(channel), routing_key=routing_key)
            yield queue
        finally:
            await connection.close()

    @staticmethod
    async def next_about(
        queue: AbstractQueue, subject: uuid.UUID | str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The next CloudEvent about `subject` that reached the tap (others are dropped: events
        of earlier tests that a relay publishes late)."""
        found = await Bus.first_about(queue, [subject], timeout)
        return found[str(subject)]

    @staticmethod
    async def message_about(
        queue: AbstractQueue, subject: uuid.UUID | str, timeout: float = 10.0
    ) -> AbstractIncomingMessage:
        """`next_about`, as the AMQP message that carried it (its properties to check too)."""

        async def take() -> AbstractIncomingMessage:
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    if json.loads(message.body).get("subject") == str(subject):
                        return message
            msg = "queue closed"
            raise AssertionError(msg)

        return await asyncio.wait_for(take(), timeout)

    @staticmethod
    async def first_about(
        queue: AbstractQueue, subjects: Iterable[uuid.UUID | str], timeout: float = 10.0
    ) -> dict[str, dict[str, Any]]:
        """The first CloudEvent about each subject that reached the tap, by subject."""
        wanted = {str(subject) for subject in subjects}
        found: dict[str, dict[str, Any]] = {}

        async def take() -> None:
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    body: dict[str, Any] = json.loads(message.body)
                    subject = body.get("subject")
                    if subject in wanted and subject not in found:
                        found[subject] = body
                        if len(found) == len(wanted):
                            return

        await asyncio.wait_for(take(), timeout)
        return found
