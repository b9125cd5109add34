"""Circuit breakers per upstream, against real sockets: open after consecutive failures, fail fast
without touching the network while open, probe when half-open, close once the upstream is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from typing import Any

import httpx
from prometheus_client import REGISTRY

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
ServeApp = Callable[..., AbstractContextManager[str]]
# Failures count one per request: no retries muddying the arithmetic.
FAST = {"upstream_retries": 0}


def _state(upstream: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_circuit_state", {"upstream": upstream})


def _rejected(upstream: str) -> float:
    labels = {"upstream": upstream}
    return REGISTRY.get_sample_value("gateway_circuit_rejected_total", labels) or 0.0


def _type(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


class ConnectionCounter:
    """A TCP server that counts connections and drops each without answering (aiohttp may try a
    dropped idempotent request twice, so a request opens one or two connections)."""

    def __init__(self) -> None:
        self.connections = 0

    async def drop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.drop, "127.0.0.1", 0)
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        finally:
            server.close()
            await server.wait_closed()


async def test_open_circuit_fails_fast_without_connecting(
    gateway_factory: GatewayFactory,
) -> None:
    counter = ConnectionCounter()
    before = _rejected("catalog")
    async with (
        counter.serve() as url,
        gateway_factory(
            catalog_url=url, circuit_failure_threshold=3, circuit_open_seconds=30, **FAST
        ) as gateway,
    ):
        failures = [await gateway.get("/v1/products") for _ in range(3)]
        assert _state("catalog") == 2
        connections = counter.connections
        started = time.monotonic()
        refused = [await gateway.get("/v1/products") for _ in range(2)]
        elapsed = time.monotonic() - started
    assert [r.status_code for r in failures] == [502, 502, 502]
    assert connections >= 3
    assert counter.connections == connections
    assert [r.status_code for r in refused] == [503, 503]
    assert {_type(r) for r in refused} == {"circuit-open"}
    assert refused[0].headers["content-type"] == "application/problem+json"
    assert 25 <= int(refused[0].headers["retry-after"]) <= 30
    assert elapsed < 0.1
    assert _rejected("catalog") == before + 2


async def test_circuit_half_opens_and_closes_when_the_upstream_is_back(
    gateway_factory: GatewayFactory, closed_port_url: str, serve_app: ServeApp, upstreams: Any
) -> None:
    port = int(closed_port_url.rsplit(":", 1)[1])
    async with gateway_factory(
        catalog_url=closed_port_url, circuit_failure_threshold=2, circuit_open_seconds=0.3, **FAST
    ) as gateway:
        down = [await gateway.get("/v1/products") for _ in range(3)]
        assert [_type(r) for r in down] == [
            "upstream-unavailable",
            "upstream-unavailable",
            "circuit-open",
        ]
        assert down[2].headers["retry-after"] == "1"
        with serve_app(upstreams["catalog"].app(), port=port):
            await asyncio.sleep(0.35)
            trial = await gateway.get("/v1/products")
            assert _state("catalog") == 0
            after = await gateway.get("/v1/products")
    assert trial.status_code == 200
    assert after.status_code == 200


async def test_failed_trial_reopens_the_circuit(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    async with gateway_factory(
        catalog_url=closed_port_url, circuit_failure_threshold=1, circuit_open_seconds=0.2, **FAST
    ) as gateway:
        first = await gateway.get("/v1/products")
        await asyncio.sleep(0.25)
        trial = await gateway.get("/v1/products")
        again = await gateway.get("/v1/products")
    assert _type(first) == "upstream-unavailable"
    assert _type(trial) == "upstream-unavailable"
    assert _type(again) == "circuit-open"
    assert _state("catalog") == 2


async def test_half_open_lets_only_the_configured_trials_through(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(
        circuit_failure_threshold=2,
        circuit_open_seconds=0.2,
        circuit_half_open_max_calls=2,
        **FAST,
    ) as gateway:
        for _ in range(2):
            await gateway.get("/v1/products?status=503")
        await asyncio.sleep(0.25)
        # Each its own trip upstream: identical concurrent reads of a cached route would share
        # one (gateway.edge_cache).
        own_trip = {"Cache-Control": "no-cache"}
        concurrent = await asyncio.gather(
            *(gateway.get("/v1/products?sleep=0.3", headers=own_trip) for _ in range(3))
        )
        closed = await gateway.get("/v1/products")
    assert sorted(r.status_code for r in concurrent) == [200, 200, 503]
    assert closed.status_code == 200


async def test_503_answers_open_the_circuit_but_500_answers_do_not(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(circuit_failure_threshold=2, **FAST) as gateway:
        for _ in range(3):
            assert (await gateway.get("/v1/products?status=500")).status_code == 500
        assert (await gateway.get("/v1/products")).status_code == 200
        for _ in range(2):
            assert (await gateway.get("/v1/products?status=503")).status_code == 503
        response = await gateway.get("/v1/products")
    assert _type(response) == "circuit-open"


async def test_each_upstream_has_its_own_circuit(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    async with gateway_factory(
        catalog_url=closed_port_url, circuit_failure_threshold=1, **FAST
    ) as gateway:
        await gateway.get("/v1/products")
        catalog = await gateway.get("/v1/products")
        auth = await gateway.get("/v1/auth/jwks")
    assert _type(catalog) == "circuit-open"
    assert auth.status_code == 200
    assert _state("auth") == 0
