"""The services behind the gateway: one pooled HTTP client and one circuit breaker for each.

Every request to an upstream carries the gateway's service token for that upstream
(`chassis.service_tokens`) beside the user's own `Authorization`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from chassis.clients import http_client
from chassis.logging import get_logger
from chassis.service_tokens import ServiceAuth, ServiceTokens
from gateway.circuit_breaker import CircuitBreaker, CircuitState
from gateway.metrics import CIRCUIT_STATE
from gateway.settings import GatewaySettings, UpstreamTransport
from gateway.throttle import AdaptiveThrottle

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    client: httpx.AsyncClient
    breaker: CircuitBreaker
    # Retries of idempotent requests after a transient failure, and the first backoff.
    retries: int = 0
    backoff_seconds: float = 0.05
    # The upstream stores the answer of each `Idempotency-Key`: a request that carries one is
    # as safe to repeat as a GET (the IETF Idempotency-Key header's purpose), so it is retried
    # after the same transient failures, e.g. a keep-alive connection closed by a restarting
    # upstream just as the request went out.
    honours_idempotency_keys: bool = False
    # Adaptive throttling per method (gateway.throttle): ratio (0: off) and window.
    throttle_ratio: float = 0.0
    throttle_window_seconds: float = 10.0
    # httpx's per-request timeout extension, computed once instead of on every request.
    timeout: dict[str, float | None] = field(init=False)
    _throttles: dict[str, AdaptiveThrottle] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeout", self.client.timeout.as_dict())

    def throttle(self, method: str) -> AdaptiveThrottle:
        """The throttle of one method: an upstream shedding POSTs still serves its GETs."""
        throttle = self._throttles.get(method)
        if throttle is None:
            throttle = self._throttles[method] = AdaptiveThrottle(
                ratio=self.throttle_ratio, window_seconds=self.throttle_window_seconds
            )
        return throttle

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


# Upstreams that deduplicate requests by `Idempotency-Key` (orders' placements).
KEYED_UPSTREAMS = frozenset({"orders"})


def upstream_urls(settings: GatewaySettings) -> dict[str, str]:
    return {
        "auth": settings.auth_url,
        "catalog": settings.catalog_url,
        "orders": settings.orders_url,
        "worker": settings.worker_url,
    }


def upstream_client(
    settings: GatewaySettings, base_url: str, *, auth: httpx.Auth | None = None
) -> httpx.AsyncClient:
    """A client with the upstream timeouts and pool size, on the configured transport."""
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
    )
    # UPSTREAM_TRANSPORT=httpx is the benchmark's baseline: same API, timeouts and context
    # propagation on httpx's own transport.
    baseline = settings.upstream_transport is UpstreamTransport.HTTPX
    return http_client(
        base_url=base_url,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
        max_connections=settings.upstream_max_connections,
        max_keepalive=settings.upstream_max_connections,
        transport=httpx.AsyncHTTPTransport(limits=limits) if baseline else None,
        auth=auth,
    )


def _circuit_moved(name: str, old: CircuitState, new: CircuitState) -> None:
    CIRCUIT_STATE.labels(name).set(new.value)
    level = "info" if new is CircuitState.CLOSED else "warning"
    getattr(log, level)(
        "circuit_state_changed", upstream=name, previous=old.name.lower(), state=new.name.lower()
    )


def circuit_breaker(settings: GatewaySettings, name: str) -> CircuitBreaker:
    CIRCUIT_STATE.labels(name).set(CircuitState.CLOSED.value)
    return CircuitBreaker(
        name,
        failure_threshold=settings.circuit_failure_threshold,
        open_seconds=settings.circuit_open_seconds,
        half_open_max_calls=settings.circuit_half_open_max_calls,
        on_transition=_circuit_moved,
    )


def open_upstreams(settings: GatewaySettings, tokens: ServiceTokens) -> dict[str, Upstream]:
    return {
        name: Upstream(
            name=name,
            base_url=url.rstrip("/"),
            client=upstream_client(settings, url, auth=ServiceAuth(tokens, name)),
            breaker=circuit_breaker(settings, name),
            retries=settings.upstream_retries,
            honours_idempotency_keys=name in KEYED_UPSTREAMS,
            backoff_seconds=settings.upstream_retry_backoff_seconds,
            throttle_ratio=settings.upstream_throttle_ratio,
            throttle_window_seconds=settings.upstream_throttle_window_seconds,
        )
        for name, url in upstream_urls(settings).items()
    }


async def close_upstreams(upstreams: Mapping[str, Upstream]) -> None:
    for upstream in upstreams.values():
        await upstream.client.aclose()
