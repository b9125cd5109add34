"""One call to an upstream: through its circuit breaker, retried when that is safe, bounded by a
deadline as a whole.

Failures for the circuit are transport failures (refused, timed out, broken HTTP) and 502, 503 or
504 answers, except a 503 with `Retry-After`: an upstream shedding load it has no room for.
Retries are for idempotent methods only (and requests with an `Idempotency-Key` to an upstream
that honours it), after failures that are transient and where the request
cannot have been half-processed twice with a different outcome: a refused connection, a
connection dropped without an answer, or a 502/503/504 (not a shedding 503). Timeouts are not
retried: a connect timeout is indistinguishable from waiting for the gateway's own exhausted pool
(retrying would turn a fast 503 into a queue), and a read timeout means an upstream already too
slow. An open circuit is never retried.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass

import aiohttp
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from chassis.clients import transport_cause
from chassis.logging import get_logger
from chassis.problems import DomainError
from gateway.circuit_breaker import BreakerOpenError
from gateway.exceptions import (
    BadGatewayError,
    CircuitOpenError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.forwarding import RawHeaders
from gateway.metrics import CIRCUIT_REJECTED, UPSTREAM_DURATION, UPSTREAM_REQUESTS, UPSTREAM_RETRIES
from gateway.upstreams import Upstream

log = get_logger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# What became of one attempt, as `gateway_upstream_requests_total` labels it.
OUTCOMES = ("ok", "upstream_error", "unavailable", "timeout", "bad_gateway")
FAILURE_STATUSES = frozenset({502, 503, 504})

# Transport failures by what they mean for the client, classified on `transport_cause` (the
# aiohttp exception when there is one: httpx_aiohttp's mapping onto httpx's is loose).
_REFUSED: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, httpx.ConnectError)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    *_REFUSED,  # refused, unreachable, DNS
    aiohttp.ConnectionTimeoutError,  # connect or pool-wait timeout
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


class AttemptFailedError(Exception):
    """One attempt's transport failure: what the client gets, and whether a retry may fix it."""

    def __init__(self, failure: DomainError, *, transient: bool) -> None:
        super().__init__(failure.detail)
        self.failure = failure
        self.transient = transient


def _failure(exc: BaseException) -> tuple[DomainError, bool]:
    cause = transport_cause(exc)
    if isinstance(cause, _UNAVAILABLE):
        failure = UpstreamUnavailableError("The service behind this route is unreachable.")
        return failure, isinstance(cause, _REFUSED)
    if isinstance(cause, _TIMED_OUT):
        return UpstreamTimeoutError("The service behind this route did not answer in time."), False
    return BadGatewayError("The service behind this route gave no valid answer."), True


def _outcome(failure: DomainError) -> str:
    return {503: "unavailable", 504: "timeout"}.get(failure.status, "bad_gateway")


async def _attempt(
    *,
    upstream: Upstream,
    method: str,
    target: str,
    headers: RawHeaders,
    body: bytes,
    deadline: float,
) -> UpstreamAnswer:
    """Send the request once and read the whole answer, settling the circuit's permit."""
    try:
        permit = upstream.breaker.admit()
    except BreakerOpenError as exc:
        CIRCUIT_REJECTED.labels(upstream.name).inc()
        raise CircuitOpenError(
            "The service behind this route is failing; the gateway is not calling it for now.",
            retry_after=exc.retry_after,
        ) from None
    request = upstream.request(method, target, headers=headers, body=body)
    begin = time.perf_counter()
    try:
        async with asyncio.timeout_at(deadline):
            response = await upstream.client.send(request, stream=True)
            try:
                content = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
    except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
        failure, transient = _failure(exc)
        UPSTREAM_REQUESTS.labels(upstream.name, _outcome(failure)).inc()
        log.warning(
            "upstream_failed",
            upstream=upstream.name,
            outcome=_outcome(failure),
            error=type(exc).__name__,
            cause=type(exc.__cause__).__name__,
        )
        permit.failed()
        raise AttemptFailedError(failure, transient=transient) from exc
    except BaseException:
        permit.release()  # cancelled: says nothing about the upstream's health
        raise
    finally:
        UPSTREAM_DURATION.labels(upstream.name).observe(time.perf_counter() - begin)
    if response.status_code in FAILURE_STATUSES and not shedding(response.headers.raw):
        permit.failed()
    else:
        permit.succeeded()
    outcome = "upstream_error" if response.status_code >= 500 else "ok"
    UPSTREAM_REQUESTS.labels(upstream.name, outcome).inc()
    return UpstreamAnswer(status=response.status_code, headers=response.headers.raw, body=content)


def _repeatable(upstream: Upstream, method: str, headers: RawHeaders) -> bool:
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return upstream.honours_idempotency_keys and any(
        name.lower() == b"idempotency-key" for name, _ in headers
    )


def _transient_failure(exc: BaseException) -> bool:
    return isinstance(exc, AttemptFailedError) and exc.transient


def shedding(headers: RawHeaders) -> bool:
    """A 503 with `Retry-After` is an upstream refusing work it has no room for (admission
    control, its in-flight bound): alive and answering at once, so no failure for its circuit
    (shedding load must not make the gateway stop calling it altogether), and no retry before
    the time it asked for."""
    return any(name.lower() == b"retry-after" for name, _ in headers)


def _transient_answer(answer: UpstreamAnswer) -> bool:
    return answer.status in FAILURE_STATUSES and not shedding(answer.headers)


def _last_outcome(state: RetryCallState) -> UpstreamAnswer:
    """When retries are spent, the client gets the last attempt's answer or failure."""
    assert state.outcome is not None
    answer: UpstreamAnswer = state.outcome.result()
    return answer


def _retrying(upstream: Upstream, deadline_seconds: float) -> AsyncRetrying:
    def count_retry(_: RetryCallState) -> None:
        UPSTREAM_RETRIES.labels(upstream.name).inc()

    return AsyncRetrying(
        # No sleep that would end past the deadline; an attempt in flight is cut at it.
        stop=stop_after_attempt(upstream.retries + 1) | stop_before_delay(deadline_seconds),
        wait=wait_exponential_jitter(
            multiplier=upstream.backoff_seconds,
            jitter=upstream.backoff_seconds,
            max=deadline_seconds,
        ),
        retry=retry_if_exception(_transient_failure) | retry_if_result(_transient_answer),
        retry_error_callback=_last_outcome,
        before_sleep=count_retry,
        reraise=True,
    )


async def call(
    *,
    upstream: Upstream,
    method: str,
    target: str,
    headers: RawHeaders,
    body: bytes,
    deadline_seconds: float,
) -> UpstreamAnswer:
    """The upstream's whole answer, or the DomainError the client gets instead.

    Bodies are buffered (requests are capped by the body limit, answers are API documents) so a
    failure half-way through still becomes a problem response instead of a truncated one.
    """
    attempt = functools.partial(
        _attempt,
        upstream=upstream,
        method=method,
        target=target,
        headers=headers,
        body=body,
        deadline=asyncio.get_running_loop().time() + deadline_seconds,
    )
    try:
        if not _repeatable(upstream, method, headers) or upstream.retries == 0:
            return await attempt()
        answer: UpstreamAnswer = await _retrying(upstream, deadline_seconds)(attempt)
        return answer
    except AttemptFailedError as exc:
        raise exc.failure from exc.__cause__
