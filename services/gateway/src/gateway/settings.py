"""Gateway configuration: where each upstream lives and how long the gateway waits for it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from chassis.settings import WithRedis, WithTokenVerification


class UpstreamTransport(StrEnum):
    """The HTTP transport under the upstream clients' httpx API.

    `aiohttp` is the production choice; `httpx` (httpx's own transport) exists as the baseline
    `bench/gateway_bench.py` compares it against.
    """

    AIOHTTP = "aiohttp"
    HTTPX = "httpx"


class GatewaySettings(WithRedis, WithTokenVerification):
    service_name: str = "gateway"
    port: int = 8000

    auth_url: str = "http://127.0.0.1:8001"
    catalog_url: str = "http://127.0.0.1:8002"
    orders_url: str = "http://127.0.0.1:8003"
    worker_url: str = "http://127.0.0.1:8004"

    # Connecting and waiting for a free pooled connection; past it the answer is 503.
    upstream_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    # Longest silence while waiting for (each part of) the upstream's answer; past it, 504.
    upstream_read_timeout_seconds: float = Field(default=10.0, gt=0)
    # Connections per upstream; requests beyond it wait up to the connect timeout.
    upstream_max_connections: int = Field(default=200, ge=1)
    upstream_transport: UpstreamTransport = UpstreamTransport.AIOHTTP

    # Bound on one JWKS fetch (it happens on the request path when an unknown key id shows up).
    jwks_timeout_seconds: float = Field(default=2.0, gt=0)
    # Least seconds between two JWKS fetches triggered by unknown key ids (rotation pick-up).
    jwks_min_refresh_seconds: float = Field(default=5.0, ge=0)
