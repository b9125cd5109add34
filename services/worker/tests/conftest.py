"""Fixtures of the worker tests: the real app on a migrated database and the test session's own
broker namespace, a real JWKS, a real SMTP server and a real webhook receiver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from worker_sinks import Mailbox, SmtpServer, WebhookReceiver
from worker_test_support import Bus, WorkerDb

from chassis.db import create_engine
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, ServiceUnderTest
from fleetctl.tokens import TestTokenIssuer
from worker.main import build_app
from worker.settings import WorkerSettings

MakeSettings = Callable[..., WorkerSettings]
StartWorker = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def worker_database_url(fleet_database: FleetDatabase) -> str:
    return fleet_database.migrate("worker")


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    server = SmtpServer(box)
    try:
        yield box
    finally:
        server.stop()


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def bus(base_stack: Stack, broker_namespace: dict[str, Any]) -> Bus:
    return Bus(amqp_url=base_stack.amqp_url, exchange=str(broker_namespace["amqp_exchange"]))


@pytest.fixture(scope="session")
async def db(worker_database_url: str) -> AsyncIterator[WorkerDb]:
    engine = create_engine(worker_database_url)
    try:
        yield WorkerDb(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def worker_service(
    worker_database_url: str,
    *,
    base_stack: Stack,
    broker_namespace: dict[str, Any],
    token_issuer: TestTokenIssuer,
    mailbox: Mailbox,
    s3_settings: dict[str, Any],
) -> ServiceUnderTest[WorkerSettings]:
    return ServiceUnderTest(
        WorkerSettings,
        build_app,
        {
            "database_url": worker_database_url,
            "auth_jwks_url": token_issuer.jwks_url,
            "amqp_url": base_stack.amqp_url,
            **broker_namespace,
            "smtp_url": mailbox.url,
            "smtp_timeout_seconds": 2,
            "email_backoff_base_seconds": 0.02,
            "email_backoff_cap_seconds": 0.1,
            "webhooks_allow_private": True,
            "webhook_timeout_seconds": 2,
            "webhook_backoff_base_seconds": 0.02,
            "webhook_backoff_cap_seconds": 0.1,
            "worker_poll_seconds": 0.1,
            "shutdown_grace_seconds": 3,
            # A bucket of the test's own on the emulator, created when the worker starts.
            **s3_settings,
        },
    )


@pytest.fixture
def make_settings(worker_service: ServiceUnderTest[WorkerSettings]) -> MakeSettings:
    return worker_service.settings


@pytest.fixture
def start_worker(worker_service: ServiceUnderTest[WorkerSettings]) -> StartWorker:
    """Start the worker with some settings overridden (`start_worker(smtp_url=...)`)."""
    return worker_service.start


@pytest.fixture
async def client(
    worker_service: ServiceUnderTest[WorkerSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    async with worker_service.start() as http:
        yield http


@dataclass(frozen=True)
class Customer:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


@pytest.fixture
def new_customer(token_issuer: TestTokenIssuer) -> Callable[..., Customer]:
    def make(*, roles: tuple[str, ...] = ("customer",)) -> Customer:
        user_id = uuid.uuid4()
        token = token_issuer.issue(subject=str(user_id), roles=list(roles))
        return Customer(
            user_id, f"{user_id.hex[:12]}@example.com", {"Authorization": f"Bearer {token}"}
        )

    return make


@pytest.fixture
def customer(new_customer: Callable[..., Customer]) -> Customer:
    return new_customer()
