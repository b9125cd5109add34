"""One order placed through the gateway is one trace across every service that touches it."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

import httpx
import pytest
from e2e_support import RunningFleet, bearer, create_product, register_and_login

pytestmark = pytest.mark.e2e


def _spans(running_fleet: RunningFleet, trace_id: str) -> list[dict[str, Any]]:
    spans = []
    for service in ("gateway", "auth", "catalog", "orders", "worker"):
        for line in running_fleet.fleet.tail(service).splitlines():
            if not line.startswith('{"name"'):
                continue
            span = json.loads(line)
            if span["context"]["trace_id"] == f"0x{trace_id}":
                spans.append(span)
    return spans


def _service(span: dict[str, Any]) -> str:
    return str(span["resource"]["attributes"]["service.name"])


async def test_an_order_is_one_trace_from_the_gateway_through_the_broker_to_the_worker(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    product = await create_product(gateway, stock=3, price=700, name="Traced")
    session = await register_and_login(gateway)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    placed = await gateway.post(
        "/v1/orders",
        headers={
            **bearer(session["access_token"]),
            "Idempotency-Key": uuid.uuid4().hex,
            "traceparent": f"00-{trace_id}-{caller_span}-01",
        },
        json={"items": [{"product_id": product, "quantity": 1}]},
    )
    assert placed.status_code == 202, placed.text

    def complete() -> bool:
        spans = _spans(running_fleet, trace_id)
        return any(
            _service(s) == "worker" and s["name"] == "consume order.confirmed.v1" for s in spans
        )

    for _ in range(300):
        if complete():
            break
        await asyncio.sleep(0.05)
    spans = _spans(running_fleet, trace_id)
    assert {"gateway", "orders", "catalog", "worker"} <= {_service(s) for s in spans}

    by_id = {s["context"]["span_id"]: s for s in spans}
    # Every span hangs off another span of this trace, or off the caller's span: one tree.
    for span in spans:
        assert span["parent_id"] in by_id or span["parent_id"] == f"0x{caller_span}", span["name"]
    # Across the broker, each consumer is the child of the producer that published its message.
    consumers = [s for s in spans if s["kind"] == "SpanKind.CONSUMER"]
    assert {s["name"] for s in consumers} >= {
        "consume order.placed.v1",
        "consume stock.reserved.v1",
        "consume order.confirmed.v1",
    }
    for consumer in consumers:
        parent = by_id[consumer["parent_id"]]
        assert parent["kind"] == "SpanKind.PRODUCER"
        assert parent["name"] == consumer["name"].replace("consume", "publish")
