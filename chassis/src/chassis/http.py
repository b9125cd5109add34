"""The ASGI middleware every request passes first: request id, trace span, logs, metrics, limits.

Pure ASGI (not BaseHTTPMiddleware) so it adds no per-request task or body buffering, and so it can
answer 413 before a byte of an oversize body is read.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.logging import get_logger
from chassis.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS
from chassis.problems import problem_response

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})

log = get_logger("chassis.http")
tracer = trace.get_tracer("chassis.http")


def request_id_from(headers: Headers) -> str:
    """Echo a well-formed client request id; replace anything else with a fresh one."""
    candidate = headers.get(REQUEST_ID_HEADER, "")
    return candidate if _VALID_REQUEST_ID.match(candidate) else uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        request_id = request_id_from(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        parent = propagate.extract(dict(headers))
        token = otel_context.attach(parent)
        method: str = scope["method"]
        status = 500
        started = False
        begin = time.perf_counter()

        rejected = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, started
            if rejected:
                return  # the 413 already went out; drop what the app answers to the cut body
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            # Frameworks catch exceptions raised while reading the body, so an oversize streamed
            # body is answered here and the app is told the client went away.
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not started:
                    await self._too_large(scope, send_with_request_id)
                    rejected = True
                    return {"type": "http.disconnect"}
            return message

        HTTP_IN_FLIGHT.inc()
        try:
            with tracer.start_as_current_span(
                f"{method} {scope.get('path', '')}", kind=trace.SpanKind.SERVER
            ) as span:
                try:
                    declared = int(headers.get("content-length", "0"))
                except ValueError:
                    declared = 0
                if declared > self.max_body_bytes:
                    await self._too_large(scope, send_with_request_id)
                else:
                    await self.app(scope, limited_receive, send_with_request_id)
                span.update_name(f"{method} {route_template(scope)}")
                span.set_attribute("http.response.status_code", status)
        except Exception as exc:
            log.exception("unhandled_error", path=scope.get("path"), error_type=type(exc).__name__)
            if started:
                raise
            await self._problem(
                scope, send_with_request_id, status=500, code="internal-error",
                detail="An unexpected error occurred; quote the request_id when reporting it.",
            )
        finally:
            HTTP_IN_FLIGHT.dec()
            otel_context.detach(token)
            elapsed = time.perf_counter() - begin
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route, str(status)).observe(elapsed)
            level = "debug" if scope.get("path") in _QUIET_PATHS else "info"
            getattr(log, level)(
                "request", method=method, route=route, path=scope.get("path"), status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await self._problem(scope, send, status=413, code="payload-too-large",
                            detail=f"Request body exceeds {self.max_body_bytes} bytes.")

    async def _problem(self, scope: Scope, send: Send, *, status: int, code: str, detail: str) -> None:
        request = Request(scope)
        response = problem_response(request, status=status, code=code, detail=detail,
                                    headers={"Connection": "close"} if status == 413 else None)
        await response(scope, _drain, send)


async def _drain() -> dict[str, Any]:
    return {"type": "http.disconnect"}
