"""The ASGI middleware every request passes first: request id, trace span, logs, metrics, limits.

Pure ASGI (not BaseHTTPMiddleware) so it adds no per-request task or body buffering, and so it can
answer 413 before the app reads a byte of an oversize body.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.logging import get_logger
from chassis.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS, HTTP_SHED
from chassis.problems import problem_response

REQUEST_ID_HEADER = "x-request-id"
# On every response unless the app set its own: JSON is never sniffed into something runnable,
# never framed, never cached by a shared cache unless the app says it may be, and leaks no
# Referer. (HSTS belongs to whoever terminates TLS: the ingress.)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
# After a 413, up to this many times the limit is read and discarded, for at most this long.
_DRAIN_FACTOR = 16
_DRAIN_SECONDS = 5.0

log = get_logger("chassis.http")
tracer = trace.get_tracer("chassis.http")
# The request being served, for what needs its context deep inside a use case (`chassis.audit`
# reads its client address and request id from it); None outside a request.
CURRENT_REQUEST: ContextVar[Scope | None] = ContextVar("chassis_current_request", default=None)


def request_id_from(headers: Headers) -> str:
    """Echo a well-formed client request id; replace anything else with a fresh one."""
    candidate = headers.get(REQUEST_ID_HEADER, "")
    return candidate if _VALID_REQUEST_ID.match(candidate) else uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class _Exchange:
    """One request/response pair: stamps the request id, enforces the body limit, keeps status."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, limit: int, body_timeout: float
    ) -> None:
        self.scope, self._receive, self._send, self.limit = scope, receive, send, limit
        self.body_timeout = body_timeout
        self._body_deadline: float | None = None
        self._body_done = False
        self.request_id = request_id_from(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = self.request_id
        self.status = 500
        self.started = False
        self.rejected = False
        self._received = 0

    def declared_too_large(self) -> bool:
        try:
            return int(Headers(scope=self.scope).get("content-length", "0")) > self.limit
        except ValueError:
            return False

    async def send(self, message: Message) -> None:
        if self.rejected:
            return  # the 413 already went out; drop what the app answers to the cut body
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            MutableHeaders(scope=message)[REQUEST_ID_HEADER] = self.request_id
            # One pass over the raw headers (ASGI names are lower-case bytes), not one per name.
            raw: list[tuple[bytes, bytes]] = message["headers"]
            present = {name for name, _ in raw}
            raw.extend(pair for pair in SECURITY_HEADERS if pair[0] not in present)
        await self._send(message)

    async def receive(self) -> Message:
        # Frameworks swallow exceptions raised while reading the body, so an oversize streamed
        # body (or one that does not arrive in time) is answered here and the app is told that
        # the client went away.
        if self._body_done:
            return await self._receive()
        if self._body_deadline is None:
            self._body_deadline = asyncio.get_running_loop().time() + self.body_timeout
        try:
            async with asyncio.timeout_at(self._body_deadline):
                message = await self._receive()
        except TimeoutError:
            await self.too_slow()
            return {"type": "http.disconnect"}
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_done = True
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self.limit and not self.started:
                await self.too_large(more_body=message.get("more_body", False))
                self.rejected = True
                return {"type": "http.disconnect"}
        return message

    async def too_slow(self) -> None:
        """A body trickling in (a byte a second holds a connection and an in-flight slot for as
        long as the client likes) is cut at the deadline: 408, and the connection closed."""
        self._body_done = True
        if self.started:
            return
        await self.problem(
            408,
            "request-timeout",
            f"The request body did not arrive within {self.body_timeout:g} s.",
            headers={"Connection": "close"},
        )
        self.rejected = True

    async def too_large(self, *, more_body: bool = True) -> None:
        await self.problem(413, "payload-too-large", f"Request body exceeds {self.limit} bytes.")
        if more_body:
            await self._drain()

    async def _drain(self) -> None:
        """Read and discard the rest of the body (bounded in bytes and time) after the 413.

        Closing a socket with unread data makes the kernel send a reset, and a client still
        uploading would then see "connection reset" instead of the 413 it was sent. So the
        413 does not ask to close the connection: once drained, it stays usable.
        """
        budget = _DRAIN_FACTOR * self.limit
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                while budget > 0:
                    message = await self._receive()
                    if message["type"] != "http.request":
                        return
                    budget -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return

    async def problem(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        response = problem_response(
            Request(self.scope), status=status, code=code, detail=detail, headers=headers
        )
        await response(self.scope, _disconnected, self.send)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_in_flight: int,
        body_timeout_seconds: float = 10.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, self.max_body_bytes, self.body_timeout_seconds)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
        current = CURRENT_REQUEST.set(scope)
        token = otel_context.attach(propagate.extract(dict(Headers(scope=scope))))
        begin = time.perf_counter()
        self.in_flight += 1
        HTTP_IN_FLIGHT.inc()
        try:
            if self.in_flight > self.max_in_flight and scope.get("path") not in _QUIET_PATHS:
                await self._shed(exchange, begin)
            else:
                await self._handle(exchange, begin)
        finally:
            self.in_flight -= 1
            HTTP_IN_FLIGHT.dec()
            otel_context.detach(token)
            CURRENT_REQUEST.reset(current)
            structlog.contextvars.clear_contextvars()

    async def _shed(self, exchange: _Exchange, begin: float) -> None:
        """Bounded in-flight work: past the limit a request is refused before the app sees it,
        in microseconds, with the time to come back; waiting in line would only make it (and
        every request behind it) miss its deadline. Probes and /metrics are never refused."""
        HTTP_SHED.inc()
        await exchange.problem(
            503,
            "overloaded",
            "The service is at capacity; retry after the number of seconds in Retry-After.",
            headers={"Retry-After": "1"},
        )
        self._record(exchange, time.perf_counter() - begin)

    async def _handle(self, exchange: _Exchange, begin: float) -> None:
        scope = exchange.scope
        method = scope["method"]
        with tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}", kind=trace.SpanKind.SERVER
        ) as span:
            try:
                if exchange.declared_too_large():
                    await exchange.too_large()
                else:
                    await self.app(scope, exchange.receive, exchange.send)
            except Exception as exc:
                log.exception(
                    "unhandled_error", path=scope.get("path"), error_type=type(exc).__name__
                )
                if exchange.started:
                    raise
                await exchange.problem(
                    500,
                    "internal-error",
                    "An unexpected error occurred; quote the request_id when reporting it.",
                )
            finally:
                span.update_name(f"{method} {route_template(scope)}")
                span.set_attribute("http.response.status_code", exchange.status)
                # Inside the span, so the access log line carries its trace_id.
                self._record(exchange, time.perf_counter() - begin)

    @staticmethod
    def _record(exchange: _Exchange, elapsed: float) -> None:
        scope = exchange.scope
        method, route, status = scope["method"], route_template(scope), str(exchange.status)
        HTTP_REQUESTS.labels(method, route, status).inc()
        HTTP_LATENCY.labels(method, route, status).observe(elapsed)
        level = "debug" if scope.get("path") in _QUIET_PATHS else "info"
        getattr(log, level)(
            "request",
            method=method,
            route=route,
            path=scope.get("path"),
            status=exchange.status,
            duration_ms=round(elapsed * 1000, 2),
        )


async def _disconnected() -> dict[str, Any]:
    return {"type": "http.disconnect"}
