"""Request ids, body limits and deadlines, and RED metrics: the chassis middleware on every
request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from fleetctl.testing import serve_in_thread


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


async def test_a_body_that_stops_arriving_is_cut_at_the_body_timeout_with_408_and_a_close(
    sample_app: Callable[..., FastAPI],
) -> None:
    app = sample_app(body_timeout_seconds=0.5)
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /widgets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        await writer.drain()
        # One byte of a hundred came; the rest never does. (A client still sending when the
        # server closes may get a reset instead of the 408: tests/security covers that attack.)
        answer = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closed it
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["type"].endswith("/request-timeout")


async def test_a_body_that_arrives_in_time_in_pieces_is_served(
    sample_app: Callable[..., FastAPI],
) -> None:
    with serve_in_thread(sample_app(body_timeout_seconds=5)) as url:

        async def pieces() -> AsyncIterator[bytes]:
            for part in (b'{"name": ', b'"bolt", "size": 3', b"}"):
                await asyncio.sleep(0.05)
                yield part

        async with httpx.AsyncClient(base_url=url) as client:
            answer = await client.post(
                "/widgets", content=pieces(), headers={"content-type": "application/json"}
            )
    assert answer.status_code == 201, answer.text
