"""The public routes: each path prefix belongs to one upstream service, plus the aggregated
(backend-for-frontend) routes the gateway answers itself.

Every route first admits the request (token, rate limits); its answer carries the `RateLimit-*`
headers. Routes are path templates, so request metrics are labelled by template and never by raw
path. They stay out of the OpenAPI schema: each service documents its own API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import APIRouter, Request
from starlette.formparsers import MultiPartException
from starlette.responses import JSONResponse, Response

from chassis.problems import DomainError
from gateway.bff import home
from gateway.client_ip import UNKNOWN, client_ip
from gateway.forwarding import (
    forwarded_headers,
    relayed_response_headers,
    upstream_request_headers,
    upstream_target,
)
from gateway.rate_policies import is_login, login_username
from gateway.service import Admission, admit, forward
from gateway.settings import GatewaySettings
from gateway.upstreams import Upstream

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# (path template, upstream name); anything else is a 404 problem.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/v1/auth/{rest:path}", "auth"),
    ("/v1/products", "catalog"),
    ("/v1/products/{rest:path}", "catalog"),
    ("/v1/orders", "orders"),
    ("/v1/orders/{rest:path}", "orders"),
    ("/v1/webhooks/{rest:path}", "worker"),
)


def _settings(request: Request) -> GatewaySettings:
    return cast(GatewaySettings, request.app.state.settings)


def _forwarded_for(request: Request) -> str | None:
    """The client address to tell upstreams, as resolved when the request was admitted."""
    address: str = request.state.client_ip
    return None if address == UNKNOWN else address


async def _username(request: Request) -> str | None:
    """The username of a password attempt, parsed as auth parses its form (url-encoded or
    multipart); None when the body is no such form."""
    if not is_login(request.method, request.url.path):
        return None
    await request.body()  # buffered, so the form parser and the forwarder share it
    try:
        async with request.form() as form:
            return login_username(form.get("username"))
    except MultiPartException:  # auth refuses such a body too; there is no username to key on
        return None


async def _admit(request: Request) -> Admission:
    state = request.app.state
    request.state.client_ip = client_ip(request.scope, _settings(request).trusted_proxies)
    admission = await admit(
        verifier=state.verifier,
        limiter=state.rate_limiter,
        policies=state.rate_policies,
        method=request.method,
        path=request.url.path,
        authorization=request.headers.get("authorization"),
        client_ip=request.state.client_ip,
        username=await _username(request),
    )
    request.state.principal = admission.principal
    return admission


def _add_headers(exc: DomainError, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        exc.headers.setdefault(name, value)


def _proxy_to(upstream_name: str) -> Callable[[Request], Awaitable[Response]]:
    async def proxy(request: Request) -> Response:
        admission = await _admit(request)
        upstream: Upstream = request.app.state.upstreams[upstream_name]
        try:
            answer = await forward(
                upstream=upstream,
                method=request.method,
                target=upstream_target(request.scope),
                headers=upstream_request_headers(request.scope, client_ip=_forwarded_for(request)),
                body=await request.body(),
                deadline_seconds=_settings(request).upstream_deadline_seconds,
            )
        except DomainError as exc:
            _add_headers(exc, admission.headers)
            raise
        head = request.method == "HEAD"
        response = Response(content=b"" if head else answer.body, status_code=answer.status)
        response.raw_headers = relayed_response_headers(
            answer.headers, status=answer.status, body_length=len(answer.body), head=head
        )
        response.headers.update(admission.headers)
        return response

    proxy.__name__ = f"proxy_to_{upstream_name}"
    return proxy


async def bff_home(request: Request) -> Response:
    admission = await _admit(request)
    screen = await home(
        upstreams=request.app.state.upstreams,
        authorization=request.headers["authorization"],
        forwarded=forwarded_headers(request.scope, _forwarded_for(request)),
        part_timeout=_settings(request).bff_part_timeout_seconds,
    )
    return JSONResponse(screen, headers=admission.headers)


def proxy_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/v1/bff/home", bff_home, methods=["GET"])
    for template, upstream_name in ROUTES:
        router.add_api_route(template, _proxy_to(upstream_name), methods=PROXIED_METHODS)
    return router
