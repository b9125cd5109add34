"""Request ids, body limits and RED metrics applied to every request by the chassis middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from prometheus_client import REGISTRY


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/livez", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_missing_or_hostile_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    generated = await client.get("/livez")
    assert len(generated.headers["x-request-id"]) == 32
    for hostile in ("x" * 300, "a b", "<script>", "id\tx"):
        response = await client.get("/livez", headers={"X-Request-ID": hostile})
        assert response.headers["x-request-id"] != hostile
        assert len(response.headers["x-request-id"]) == 32


async def test_declared_oversize_body_is_413_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/widgets", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_streamed_oversize_body_without_length_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 512

    response = await client.post("/widgets", content=chunks())
    assert response.status_code == 413


def _count(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_metrics_are_labelled_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    before = _count("/widgets/{widget_id}", "404")
    await client.get("/widgets/1")
    await client.get("/widgets/2")
    assert _count("/widgets/{widget_id}", "404") == before + 2
    assert _count("/widgets/1", "404") == 0
    exposition = (await client.get("/metrics")).text
    assert "http_request_duration_seconds_bucket" in exposition
    assert "http_requests_in_flight" in exposition
