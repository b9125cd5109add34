"""The gateway's use cases: authenticate the caller, forward a request to its upstream."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
import httpx

from chassis.logging import get_logger
from chassis.problems import DomainError
from chassis.tokens import JwksVerifier, Principal, bearer_token
from gateway.access_policy import requires_caller
from gateway.exceptions import (
    BadGatewayError,
    TokenRequired,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.forwarding import RawHeaders
from gateway.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS
from gateway.upstreams import Upstream

log = get_logger(__name__)

# Transport failures by what they mean for the client. httpx_aiohttp maps aiohttp's exceptions
# onto httpx's loosely (a server that closes without answering becomes `ConnectTimeout`), so the
# aiohttp exception it chains as `__cause__` is classified first when there is one.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,  # refused, unreachable, DNS
    aiohttp.ConnectionTimeoutError,  # connect or pool-wait timeout
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
_TIMED_OUT: tuple[type[BaseException], ...] = (
    aiohttp.ServerTimeoutError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    TimeoutError,
)


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    status: int
    headers: RawHeaders
    body: bytes


async def authenticate(
    *, verifier: JwksVerifier, method: str, path: str, authorization: str | None
) -> Principal | None:
    """The verified caller; None for an anonymous request to a route that allows it."""
    token = bearer_token(authorization)
    if token is not None:
        return await verifier.verify(token)
    if requires_caller(method, path):
        raise TokenRequired("A bearer access token is required.")
    return None


def _failure(exc: BaseException) -> DomainError:
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    if isinstance(cause, _UNAVAILABLE):
        return UpstreamUnavailableError("The service behind this route is unreachable.")
    if isinstance(cause, _TIMED_OUT):
        return UpstreamTimeoutError("The service behind this route did not answer in time.")
    return BadGatewayError("The service behind this route gave no valid answer.")


def _outcome(failure: DomainError) -> str:
    return {503: "unavailable", 504: "timeout"}.get(failure.status, "bad_gateway")


async def forward(
    *, upstream: Upstream, method: str, target: str, headers: RawHeaders, body: bytes
) -> UpstreamAnswer:
    """Send the request and read the whole answer, bounded by the client's timeouts.

    Bodies are buffered (requests are capped by the body limit, answers are API documents) so a
    failure half-way through still becomes a problem response instead of a truncated one.
    """
    request = upstream.request(method, target, headers=headers, body=body)
    begin = time.perf_counter()
    try:
        response = await upstream.client.send(request, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        failure = _failure(exc)
        UPSTREAM_REQUESTS.labels(upstream.name, _outcome(failure)).inc()
        log.warning(
            "upstream_failed",
            upstream=upstream.name,
            outcome=_outcome(failure),
            error=type(exc).__name__,
            cause=type(exc.__cause__).__name__,
        )
        raise failure from exc
    finally:
        UPSTREAM_DURATION.labels(upstream.name).observe(time.perf_counter() - begin)
    outcome = "upstream_error" if response.status_code >= 500 else "ok"
    UPSTREAM_REQUESTS.labels(upstream.name, outcome).inc()
    return UpstreamAnswer(status=response.status_code, headers=response.headers.raw, body=content)
