"""A request is one trace across services: SERVER → CLIENT → SERVER, with its SQL inside."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from chassis_tracing_support import (
    hex_trace_id,
    one,
    parent_id,
    recorded_spans,
    served,
    span_id,
    spans_when,
)
from fastapi import APIRouter, FastAPI, Request
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from chassis.app import create_app
from chassis.clients import http_client
from chassis.db import create_engine
from chassis.settings import ServiceSettings
from fleetctl.testing import FleetDatabase


@dataclass
class Fleet:
    front: str
    back: str
    database: str


def back_app(database_url: str) -> FastAPI:
    """Answers from its database."""
    router = APIRouter()

    @router.get("/stock")
    async def stock(request: Request) -> dict[str, int]:
        async with request.app.state.engine.connect() as conn:
            value = (await conn.execute(sa.text("SELECT 7 AS in_stock"))).scalar_one()
        return {"in_stock": value}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(database_url)
        yield
        await app.state.engine.dispose()

    return create_app(
        settings=ServiceSettings(service_name="back"),
        routers=[router],
        checks=lambda _: (),
        lifespan=lifespan,
    )


def front_app(back_url: str) -> FastAPI:
    """Calls the back service through the chassis client."""
    router = APIRouter()

    @router.get("/page")
    async def page(request: Request) -> dict[str, int]:
        response = await request.app.state.back.get("/stock")
        return {"upstream": response.json()["in_stock"]}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with http_client(base_url=back_url) as client:
            app.state.back = client
            yield

    return create_app(
        settings=ServiceSettings(service_name="front"),
        routers=[router],
        checks=lambda _: (),
        lifespan=lifespan,
    )


@pytest.fixture(scope="module")
def fleet(fleet_database: FleetDatabase) -> Iterator[Fleet]:
    url = fleet_database.url_for("orders")
    with served(back_app(url)) as back, served(front_app(back)) as front:
        yield Fleet(front, back, sa.make_url(url).database or "")


def _has(*names: str) -> Callable[[Sequence[ReadableSpan]], bool]:
    def ready(spans: Sequence[ReadableSpan]) -> bool:
        return all(any(s.name == name for s in spans) for name in names)

    return ready


async def test_a_call_through_the_chassis_client_is_one_trace_server_client_server(
    fleet: Fleet,
) -> None:
    exporter = recorded_spans()
    async with httpx.AsyncClient(base_url=fleet.front) as client:
        response = await client.get("/page")
    assert response.json() == {"upstream": 7}

    spans = await spans_when(exporter, _has("GET /page", "GET /stock"))
    front = one(spans, "GET /page", SpanKind.SERVER)
    trace = [s for s in spans if hex_trace_id(s) == hex_trace_id(front)]
    call = one(trace, "GET", SpanKind.CLIENT)
    back = one(trace, "GET /stock", SpanKind.SERVER)
    assert front.parent is None
    assert parent_id(call) == span_id(front)
    assert parent_id(back) == span_id(call)
    assert back.parent is not None
    assert back.parent.is_remote
    assert call.attributes is not None
    assert str(call.attributes.get("url.full", call.attributes.get("http.url"))).endswith("/stock")


async def test_a_query_made_in_a_request_is_a_client_span_of_that_request(fleet: Fleet) -> None:
    exporter = recorded_spans()
    async with httpx.AsyncClient(base_url=fleet.back) as client:
        await client.get("/stock")

    spans = await spans_when(exporter, _has("GET /stock"))
    request = one(spans, "GET /stock", SpanKind.SERVER)
    query = one(spans, f"SELECT {fleet.database}", SpanKind.CLIENT)
    assert hex_trace_id(query) == hex_trace_id(request)
    assert parent_id(query) == span_id(request)
    assert query.attributes is not None
    assert query.attributes["db.query.text"] == "SELECT 7 AS in_stock"
    assert query.attributes["db.system.name"] == "postgresql"
    assert query.end_time is not None
