from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import pytest
from chassis_sample import build
from fastapi import FastAPI

from chassis.health import Check
from chassis.settings import ServiceSettings

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
