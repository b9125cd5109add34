"""The services behind the gateway and one pooled HTTP client for each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from chassis.clients import http_client
from gateway.settings import GatewaySettings, UpstreamTransport


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    client: httpx.AsyncClient


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
        event_hooks=client.event_hooks,
        follow_redirects=False,
    )


def open_upstreams(settings: GatewaySettings) -> dict[str, Upstream]:
    return {
        name: Upstream(name=name, client=upstream_client(settings, url))
        for name, url in upstream_urls(settings).items()
    }


async def close_upstreams(upstreams: Mapping[str, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.client.aclose()
