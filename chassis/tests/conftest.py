from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from chassis_sample import build
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.db import create_engine
from chassis.health import Check
from chassis.settings import ServiceSettings
from fleetctl.testing import FleetDatabase

AppClient = Callable[..., AsyncIterator[httpx.AsyncClient]]


@pytest.fixture
def sample_app() -> Callable[..., FastAPI]:
    def make(checks: Sequence[Check] = (), **settings: object) -> FastAPI:
        return build(ServiceSettings(service_name="sample", **settings), checks)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def client(sample_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    app = sample_app(max_body_bytes=1024)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://test",
        ) as http,
    ):
        yield http


@pytest.fixture
async def engine(fleet_database: FleetDatabase) -> AsyncIterator[AsyncEngine]:
    """An engine of the chassis (traced, bounded) on the test database, as the orders role."""
    engine = create_engine(fleet_database.url_for("orders"))
    yield engine
    await engine.dispose()
