"""Outbound HTTP: pooled httpx clients on aiohttp's transport, with explicit timeouts.

httpx's API is kept, but its default transport costs several times the CPU of aiohttp's per
request on this kind of hop (see `make bench`), so every client goes through `AiohttpTransport`.
Each request carries the caller's `X-Request-ID` and is a CLIENT span (OpenTelemetry's httpx
instrumentation wraps the client's transport, whichever it is) whose W3C `traceparent` it sends.
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.request import Request

import aiohttp
import httpx
import structlog
from httpx_aiohttp import AiohttpTransport
from opentelemetry import propagate
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor


async def _propagate_context(request: httpx.Request) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and "x-request-id" not in request.headers:
        request.headers["x-request-id"] = str(request_id)
    # The caller's context, for when instrumentation is suppressed; otherwise the transport's
    # CLIENT span replaces it with its own.
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    for key, value in carrier.items():
        request.headers.setdefault(key, value)


class NoCookies(CookieJar):
    """A jar that keeps nothing. An httpx client stores the `Set-Cookie` of every response and
    sends it with later requests; on a client shared by all callers that would hand one user's
    session cookie to the next user."""

    def set_cookie(self, cookie: Cookie) -> None:
        return

    def extract_cookies(self, response: Any, request: Request) -> None:
        return

    def add_cookie_header(self, request: Request) -> None:
        return


def transport_cause(exc: BaseException) -> BaseException:
    """The transport failure as aiohttp raised it, when httpx_aiohttp chained one.

    httpx_aiohttp maps aiohttp's exceptions onto httpx's loosely: a refused connection and a
    server that closes without answering both become `httpx.ConnectTimeout`. Classify this
    instead of the httpx exception."""
    return exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc


def aiohttp_transport(limits: httpx.Limits) -> AiohttpTransport:
    """aiohttp's transport with a session that keeps no cookies either: aiohttp has a cookie
    jar of its own under httpx's, and on a shared client it would replay one caller's cookie
    for the next."""

    def session() -> aiohttp.ClientSession:  # built on first use, inside the running loop
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0, keepalive_timeout=limits.keepalive_expiry
        )
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(client=session)


def http_client(
    *,
    base_url: str = "",
    connect_timeout: float = 1.0,
    read_timeout: float = 5.0,
    max_connections: int = 100,
    max_keepalive: int = 50,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """A pooled client that never waits forever: connect, read, write and pool are all bounded.

    `transport` replaces aiohttp's (the gateway benchmark's httpx baseline, tests). `auth` is
    the caller's service identity on a client for one internal callee
    (`chassis.service_tokens.ServiceAuth`); a client for anyone else (webhook receivers) has
    none, so the credential never leaves the fleet."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout)
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        limits=limits,
        transport=transport or aiohttp_transport(limits),
        cookies=NoCookies(),
        event_hooks={"request": [_propagate_context]},
        follow_redirects=False,
        auth=auth,
    )
    HTTPXClientInstrumentor.instrument_client(client)
    return client
