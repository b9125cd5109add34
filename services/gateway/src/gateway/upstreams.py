"""The services behind the gateway and one pooled HTTP client for each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from typing import Any
from urllib.request import Request

import httpx

from chassis.clients import http_client
from gateway.settings import GatewaySettings, UpstreamTransport


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    client: httpx.AsyncClient
    # httpx's per-request timeout extension, computed once instead of on every request.
    timeout: dict[str, float | None] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeout", self.client.timeout.as_dict())

    def request(
        self, method: str, target: str, *, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> httpx.Request:
        """The upstream request, built directly rather than through `client.build_request`,
        which would add the client's default headers and re-parse the URL twice."""
        return httpx.Request(
            method,
            self.base_url + target,
            headers=headers,
            content=body,
            extensions={"timeout": self.timeout},
        )


class _NoCookies(CookieJar):
    """A jar that keeps nothing. An httpx client stores the `Set-Cookie` of every response and
    sends it with later requests; on a client shared by all callers that would hand one user's
    session cookie to the next user."""

    def set_cookie(self, cookie: Cookie) -> None:
        return

    def extract_cookies(self, response: Any, request: Request) -> None:
        return

    def add_cookie_header(self, request: Request) -> None:
        return


def upstream_urls(settings: GatewaySettings) -> dict[str, str]:
    return {
        "auth": settings.auth_url,
        "catalog": settings.catalog_url,
        "orders": settings.orders_url,
        "worker": settings.worker_url,
    }


def upstream_client(settings: GatewaySettings, base_url: str) -> httpx.AsyncClient:
    """A client with the upstream timeouts and pool size, on the configured transport."""
    client = http_client(
        base_url=base_url,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
        max_connections=settings.upstream_max_connections,
        max_keepalive=settings.upstream_max_connections,
    )
    client.cookies = _NoCookies()
    if settings.upstream_transport is UpstreamTransport.AIOHTTP:
        return client
    # The benchmark's baseline: same API, timeouts and context propagation, httpx's own
    # transport. The chassis client above has not opened anything yet, so it is simply dropped.
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
    )
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=client.timeout,
        limits=limits,
        cookies=_NoCookies(),
        event_hooks=client.event_hooks,
        follow_redirects=False,
    )


def open_upstreams(settings: GatewaySettings) -> dict[str, Upstream]:
    return {
        name: Upstream(name=name, base_url=url.rstrip("/"), client=upstream_client(settings, url))
        for name, url in upstream_urls(settings).items()
    }


async def close_upstreams(upstreams: Mapping[str, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.client.aclose()
