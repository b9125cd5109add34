"""The public routes: each path prefix belongs to one upstream service.

Routes are path templates, so request metrics are labelled by template and never by raw path.
They stay out of the OpenAPI schema: each service documents its own API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from chassis.tokens import JwksVerifier
from gateway.forwarding import relayed_response_headers, upstream_request_headers, upstream_target
from gateway.service import authenticate, forward
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


def _proxy_to(upstream_name: str) -> Callable[[Request], Awaitable[Response]]:
    async def proxy(request: Request) -> Response:
        verifier: JwksVerifier = request.app.state.verifier
        request.state.principal = await authenticate(
            verifier=verifier,
            method=request.method,
            path=request.url.path,
            authorization=request.headers.get("authorization"),
        )
        upstream: Upstream = request.app.state.upstreams[upstream_name]
        answer = await forward(
            upstream=upstream,
            method=request.method,
            target=upstream_target(request.scope),
            headers=upstream_request_headers(request.scope),
            body=await request.body(),
        )
        head = request.method == "HEAD"
        response = Response(content=b"" if head else answer.body, status_code=answer.status)
        response.raw_headers = relayed_response_headers(
            answer.headers, status=answer.status, body_length=len(answer.body), head=head
        )
        return response

    proxy.__name__ = f"proxy_to_{upstream_name}"
    return proxy


def proxy_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for template, upstream_name in ROUTES:
        router.add_api_route(template, _proxy_to(upstream_name), methods=PROXIED_METHODS)
    return router
