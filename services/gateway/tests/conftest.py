"""Fixtures of the gateway tests: real upstream HTTP servers (small FastAPI apps served by uvicorn
on loopback, each in a thread of its own, plus raw TCP servers that break HTTP on purpose), and the
gateway app in front of them, configured per test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
)
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from fleetctl.testing import ServiceUnderTest, serve_in_thread
from fleetctl.tokens import TestTokenIssuer
from gateway.main import build_app
from gateway.settings import GatewaySettings

ECHO_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EchoUpstream:
    """Answers every request with what it received; `?sleep=<s>` delays the answer, `?status=<n>`
    sets its status (`?retry_after=<s>` adds a `Retry-After` header), and `?fail=<n>&key=<k>`
    answers 503 to the first n requests with key k."""

    name: str
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    def request_ids(self) -> set[str]:
        return {r["headers"].get("x-request-id", "") for r in self.received}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{anything:path}", methods=ECHO_METHODS)
        async def echo(request: Request) -> JSONResponse:
            body = await request.body()
            seen = {
                "upstream": self.name,
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode("latin-1"),
                "query": request.scope["query_string"].decode("latin-1"),
                "body": body.decode("utf-8", "replace"),
                "headers": {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]
                },
                "header_names": [k.decode("latin-1") for k, _ in request.scope["headers"]],
            }
            self.received.append(seen)
            if "sleep" in request.query_params:
                await asyncio.sleep(float(request.query_params["sleep"]))
            status = int(request.query_params.get("status", 200))
            if "fail" in request.query_params:
                key = request.query_params["key"]
                self.attempts[key] = self.attempts.get(key, 0) + 1
                if self.attempts[key] <= int(request.query_params["fail"]):
                    status = 503
            response = JSONResponse(seen, status_code=status)
            response.headers["x-upstream"] = self.name
            if "retry_after" in request.query_params:
                response.headers["retry-after"] = request.query_params["retry_after"]
            response.headers["proxy-echo"] = "1"
            response.headers["keep-alive"] = "timeout=99"
            response.headers.append("set-cookie", "a=1")
            response.headers.append("set-cookie", "b=2")
            return response

        return app


@dataclass
class PagedUpstream:
    """A catalog or orders stand-in answering `GET /v1/products|orders?limit=n` with a page of n
    items; `delay` and `status` make it slow or failing, `received` records each request."""

    name: str
    url: str = ""
    delay: float = 0.0
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/{collection}")
        async def page(collection: str, request: Request) -> JSONResponse:
            self.received.append({"query": dict(request.query_params), "headers": request.headers})
            await asyncio.sleep(self.delay)
            limit = int(request.query_params.get("limit", 20))
            items = [{"id": f"{collection}-{n}"} for n in range(limit)]
            return JSONResponse({"items": items, "next_cursor": None}, status_code=self.status)

        return app


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"this is not HTTP\r\n\r\n")
    await writer.drain()
    writer.close()


BROKEN_UPSTREAMS: dict[str, Handler] = {
    "closes-without-answer": _close_at_once,
    "answers-garbage": _answer_garbage,
}


@asynccontextmanager
async def raw_tcp_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


UPSTREAM_NAMES = ("auth", "catalog", "orders", "worker")

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, EchoUpstream]]:
    """One real echo server per upstream service, shared by the whole session."""
    echoes = {name: EchoUpstream(name) for name in UPSTREAM_NAMES}
    with ExitStack() as stack:
        for echo in echoes.values():
            echo.url = stack.enter_context(serve_in_thread(echo.app()))
        yield echoes


@pytest.fixture
def gateway_service(
    upstreams: dict[str, EchoUpstream], token_issuer: TestTokenIssuer, redis_prefix: str
) -> ServiceUnderTest[GatewaySettings]:
    return ServiceUnderTest(
        GatewaySettings,
        build_app,
        {
            **{f"{name}_url": echo.url for name, echo in upstreams.items()},
            "auth_jwks_url": token_issuer.jwks_url,
            "auth_token_url": token_issuer.token_url,
            "jwt_issuer": token_issuer.issuer,
            "jwt_audience": token_issuer.audience,
            "jwks_min_refresh_seconds": 0,
            "redis_key_prefix": redis_prefix,
        },
        base_url="http://gateway.test",
    )


@pytest.fixture
def gateway_settings(
    gateway_service: ServiceUnderTest[GatewaySettings],
) -> Callable[..., GatewaySettings]:
    return gateway_service.settings


@pytest.fixture
def gateway_factory(gateway_service: ServiceUnderTest[GatewaySettings]) -> GatewayFactory:
    """`async with gateway_factory(**setting_overrides) as client:` a running gateway app."""
    return gateway_service.start


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_factory() as client:
        yield client


@pytest.fixture
def bearer(token_issuer: TestTokenIssuer) -> Callable[..., dict[str, str]]:
    def make(**claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_issuer.issue(**claims)}"}

    return make


@pytest.fixture
def closed_port_url() -> str:
    """An upstream URL whose port refuses connections."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def paged_upstreams() -> Iterator[dict[str, PagedUpstream]]:
    """`catalog` and `orders` stand-ins that answer pages of items (for aggregated routes)."""
    pages = {name: PagedUpstream(name) for name in ("catalog", "orders")}
    with ExitStack() as stack:
        for page in pages.values():
            page.url = stack.enter_context(serve_in_thread(page.app()))
        yield pages


@pytest.fixture
def serve_app() -> Callable[..., AbstractContextManager[str]]:
    """`with serve_app(app, port=0) as url:` a real HTTP server for a test's own upstream app."""
    return serve_in_thread


@pytest.fixture
def broken_upstream() -> Callable[[str], AbstractAsyncContextManager[str]]:
    """`async with broken_upstream(kind) as url:` a TCP server that breaks HTTP on purpose."""
    return lambda kind: raw_tcp_server(BROKEN_UPSTREAMS[kind])
