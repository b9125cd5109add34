"""A trace crosses the broker: request → relay (PRODUCER) → consumer (CONSUMER) → and on."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from typing import Any

import aio_pika
import httpx
import sqlalchemy as sa
from chassis_messaging_support import Bench, messaging_bench, user_registered
from chassis_tracing_support import (
    hex_trace_id,
    one,
    parent_id,
    recorded_spans,
    span_id,
    spans_when,
)
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.app import create_app
from chassis.db import UnitOfWork
from chassis.logging import configure_logging
from chassis.messaging.handlers import Handlers
from chassis.messaging.runtime import Messaging
from chassis.settings import ServiceSettings
from contracts.events import CloudEvent, ProductUpdatedV1, UserRegisteredV1, new_event
from fleetctl.testing import FleetDatabase, eventually


def registering_app(bench: Bench) -> FastAPI:
    """A request handler that stages `user.registered.v1` in its transaction."""
    router = APIRouter()

    @router.post("/register", status_code=202)
    async def register() -> dict[str, str]:
        async with UnitOfWork(bench.sessions) as uow:
            event = await bench.outbox.add(uow.session, user_registered(), subject="user")
            await uow.commit()
        return {"event_id": str(event.id)}

    return create_app(
        settings=ServiceSettings(service_name="registering"), routers=[router], checks=lambda _: ()
    )


async def announce_product(bench: Bench, session: AsyncSession) -> None:
    """A handler's own event: staged while the consumed event is handled."""
    await bench.outbox.add(
        session,
        ProductUpdatedV1(
            product_id=uuid.uuid4(),
            sku="SKU-1",
            name="Widget",
            price_cents=100,
            currency="EUR",
            stock=1,
        ),
        subject="product",
    )


def _consumed(event_type: str) -> Any:
    def ready(spans: Sequence[ReadableSpan]) -> bool:
        return any(s.name == f"consume {event_type}" for s in spans)

    return ready


async def test_an_event_chain_through_the_broker_is_one_trace(
    fleet_database: FleetDatabase,
) -> None:
    exporter = recorded_spans()
    async with messaging_bench(fleet_database) as bench:

        async def on_registered(uow: UnitOfWork, _: CloudEvent, __: Any) -> None:
            await announce_product(bench, uow.session)

        async def on_product(uow: UnitOfWork, event: CloudEvent, _: Any) -> None:
            await uow.session.execute(sa.insert(bench.effects).values(event_id=str(event.id)))

        first = Messaging(bench.settings, service="first")
        second = Messaging(bench.settings, service="second")
        try:
            await first.connect()
            await second.connect()
            await first.start_consumer(
                bench.inbox, bench.sessions, Handlers().add(UserRegisteredV1, on_registered)
            )
            await second.start_consumer(
                bench.inbox, bench.sessions, Handlers().add(ProductUpdatedV1, on_product)
            )
            await first.start_relay(bench.outbox)
            app = registering_app(bench)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.post("/register")).status_code == 202
            spans = await spans_when(exporter, _consumed("product.updated.v1"))
        finally:
            await first.stop()
            await second.stop()

    request = one(spans, "POST /register", SpanKind.SERVER)
    trace = [s for s in spans if hex_trace_id(s) == hex_trace_id(request)]
    published = one(trace, "publish user.registered.v1", SpanKind.PRODUCER)
    consumed = one(trace, "consume user.registered.v1", SpanKind.CONSUMER)
    announced = one(trace, "publish product.updated.v1", SpanKind.PRODUCER)
    followed = one(trace, "consume product.updated.v1", SpanKind.CONSUMER)
    # Each hop is the child of the one before it, the broker in between included.
    assert parent_id(published) == span_id(request)
    assert parent_id(consumed) == span_id(published)
    assert parent_id(announced) == span_id(consumed)
    assert parent_id(followed) == span_id(announced)
    assert consumed.parent is not None
    assert consumed.parent.is_remote
    # The handlers' SQL is inside their consumer spans.
    assert any(
        parent_id(s) == span_id(followed)
        and s.kind is SpanKind.CLIENT
        and s.name.startswith("INSERT")
        for s in trace
    )


class _Lines(io.StringIO):
    """What the chassis logging writes to stdout, as parsed JSON lines."""

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines() if line.startswith("{")]


@contextmanager
def log_lines() -> Iterator[_Lines]:
    configure_logging(service="chassis-tests", version="test")
    lines = _Lines()
    with redirect_stdout(lines):
        yield lines


async def test_consumer_log_lines_carry_the_trace_id_of_the_consumed_event(
    fleet_database: FleetDatabase,
) -> None:
    exporter = recorded_spans()
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    event = new_event(
        user_registered(),
        source="/fleet/elsewhere",
        traceparent=f"00-{trace_id}-{parent}-01",
    )
    async with messaging_bench(fleet_database) as bench:

        async def on_registered(*_: Any) -> None:
            return

        consumer = Messaging(bench.settings, service="logs")
        publisher = await aio_pika.connect_robust(bench.settings.amqp_url)
        try:
            with log_lines() as lines:
                await consumer.connect()
                await consumer.start_consumer(
                    bench.inbox, bench.sessions, Handlers().add(UserRegisteredV1, on_registered)
                )
                # Sent by a producer that only put the trace in the envelope (no header).
                channel = await publisher.channel()
                exchange = await channel.get_exchange(bench.settings.amqp_exchange)
                await exchange.publish(aio_pika.Message(event.to_json()), routing_key=event.type)

                async def processed() -> bool:
                    return any(
                        r.get("event") == "event_processed" and r.get("event_id") == str(event.id)
                        for r in lines.records
                    )

                await eventually(processed)
        finally:
            await consumer.stop()
            await publisher.close()

    [line] = [r for r in lines.records if r.get("event_id") == str(event.id)]
    assert line["trace_id"] == trace_id
    consumed = one(exporter.get_finished_spans(), "consume user.registered.v1", SpanKind.CONSUMER)
    assert hex_trace_id(consumed) == trace_id
    assert parent_id(consumed) == int(parent, 16)
