"""Gateway configuration: where each upstream lives, how long the gateway waits for it, how it
protects the upstreams (circuit breakers, retries, the shared cache) and itself (rate limits)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, PlainSerializer, PlainValidator, model_validator
from pydantic_settings import NoDecode

from chassis.settings import WithRedis, WithServiceIdentity, WithTokenVerification
from gateway.cors import ANY_ORIGIN, parse_origins
from gateway.rates import IPNetwork, Rate, parse_networks, parse_rate

# Read verbatim from the environment (not as JSON) and parsed by the gateway's own rules.
RateSetting = Annotated[
    Rate | None,
    NoDecode,
    PlainValidator(parse_rate),
    PlainSerializer(lambda rate: str(rate) if rate else "off"),
]
NetworksSetting = Annotated[
    tuple[IPNetwork, ...],
    NoDecode,
    PlainValidator(parse_networks),
    PlainSerializer(lambda networks: ",".join(str(n) for n in networks)),
]
OriginsSetting = Annotated[
    tuple[str, ...], NoDecode, PlainValidator(parse_origins), PlainSerializer(",".join)
]


class UpstreamTransport(StrEnum):
    """The HTTP transport under the upstream clients' httpx API.

    `aiohttp` is the production choice; `httpx` (httpx's own transport) exists as the baseline
    `bench/gateway_bench.py` compares it against.
    """

    AIOHTTP = "aiohttp"
    HTTPX = "httpx"


class GatewaySettings(WithRedis, WithTokenVerification, WithServiceIdentity):
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

    # Requests per authenticated user (token `sub`), else per client IP; `off` disables.
    rate_limit_default: RateSetting = Rate(limit=100, period_seconds=1)
    # `POST /v1/auth/token` password attempts per client IP and username; `off` disables.
    rate_limit_login: RateSetting = Rate(limit=10, period_seconds=60)
    # Peers allowed to say who the client is in `X-Forwarded-For` (comma-separated CIDR blocks).
    trusted_proxies: NetworksSetting = ()

    # Consecutive failures (connection errors, timeouts, 502/503/504) that open an upstream's
    # circuit; while open, requests to it fail fast with 503 without touching the network.
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_open_seconds: float = Field(default=10.0, gt=0)
    # Trial requests let through at once when the open period is over (half-open).
    circuit_half_open_max_calls: int = Field(default=1, ge=1)

    # Retries of idempotent requests after a transient failure, within the deadline.
    upstream_retries: int = Field(default=2, ge=0)
    # First backoff before a retry; it doubles per retry, plus random jitter of the same size.
    upstream_retry_backoff_seconds: float = Field(default=0.05, gt=0)
    # Bound on one upstream call as a whole: every attempt, backoff and the full answer.
    upstream_deadline_seconds: float = Field(default=15.0, gt=0)
    # Adaptive throttling (gateway.throttle): requests forwarded per request the upstream
    # accepted, over the window, before the gateway refuses the rest itself (0: off).
    upstream_throttle_ratio: float = Field(default=2.0, ge=0)
    upstream_throttle_window_seconds: float = Field(default=10.0, gt=0)

    # Bound on each part of an aggregated (BFF) response; a late part degrades to empty.
    bff_part_timeout_seconds: float = Field(default=1.0, gt=0)

    # The shared response cache of the cached routes (gateway.edge_cache); off: every read is
    # forwarded.
    cache_enabled: bool = True
    # After a purge, answers for the purged paths are served but not stored for this long: an
    # upstream replica may still answer from its own copy of the old data (catalog keeps one for
    # CACHE_LOCAL_TTL_SECONDS), which must not be kept for a whole lifetime.
    cache_purge_settle_seconds: float = Field(default=2.0, ge=0)

    # Browser origins allowed to call the public API (gateway.cors): comma-separated, exact
    # (`https://app.example.com`), or `*`; empty: no CORS at all.
    cors_allowed_origins: OriginsSetting = ()
    # Cookies and HTTP authentication on cross-origin requests; the API's bearer tokens need none.
    cors_allow_credentials: bool = False
    # How long a browser may reuse a preflight's answer (browsers cap it: Chromium at 2 hours).
    cors_max_age_seconds: int = Field(default=600, ge=0, le=86400)

    @model_validator(mode="after")
    def _credentials_only_with_listed_origins(self) -> GatewaySettings:
        if self.cors_allow_credentials and ANY_ORIGIN in self.cors_allowed_origins:
            msg = (
                "CORS_ALLOW_CREDENTIALS=true needs the origins listed: with `*` any site could "
                "make requests with the user's cookies and read the answers"
            )
            raise ValueError(msg)
        return self
