"""The HTTP side of the public routes (gateway.routes): the proxied routes, forwarded to their
upstream, and the aggregated (backend-for-frontend) routes the gateway answers itself.

Every route first admits the request (token, rate limits); its answer carries the `RateLimit-*`
headers. Routes are path templates, so request metrics are labelled by template and never by raw
path. The GETs of a cached route go through the shared cache (gateway.edge_cache), which calls
the upstream only when it has no answer to give, and a successful write to one purges it.

The proxied routes are plain ASGI routes on the app's own router rather than FastAPI endpoints:
they take no parameters to validate and return no model, and skipping FastAPI's endpoint machinery
(dependency solving, the included router's indirection) is a large share of the gateway's cost
per request. Errors still become problem documents: a `DomainError` raised here reaches the
exception handlers the chassis installs. The public API document is assembled from the services'
own documents (gateway.public_api).
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.formparsers import MultiPartException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from chassis.problems import DomainError
from contracts.audit import AuditPage, AuditQuery
from gateway.audit import AUDIT_PATH, TrailAnswerError, audit_trail
from gateway.bff import home
from gateway.client_ip import UNKNOWN, client_ip
from gateway.edge_cache import EdgeCache
from gateway.exceptions import UpstreamOverloadedError
from gateway.forwarding import (
    RawHeaders,
    forwarded_headers,
    relayed_response_headers,
    upstream_request_headers,
    upstream_target,
)
from gateway.metrics import THROTTLED
from gateway.rate_limit import login_username
from gateway.routes import (
    BFF_HOME,
    PublicRoute,
    normalized_path,
    proxied_routes,
    public_route,
    purged_by_write,
)
from gateway.service import Admission, admit
from gateway.settings import GatewaySettings
from gateway.upstream_calls import UpstreamAnswer, call, shedding
from gateway.upstreams import Upstream

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _settings(request: Request) -> GatewaySettings:
    return cast(GatewaySettings, request.app.state.settings)


def _forwarded_for(request: Request) -> str | None:
    """The client address to tell upstreams, as resolved when the request was admitted."""
    address: str = request.state.client_ip
    return None if address == UNKNOWN else address


async def _username(request: Request, route: PublicRoute) -> str | None:
    """The username of a password attempt, parsed as auth parses its form (url-encoded or
    multipart); None when the body is no such form."""
    if not route.rates.is_login(request.method.upper()):
        return None
    await request.body()  # buffered, so the form parser and the forwarder share it
    try:
        async with request.form() as form:
            return login_username(form.get("username"))
    except MultiPartException:  # auth refuses such a body too; there is no username to key on
        return None


async def _admit(request: Request, route: PublicRoute | None = None) -> Admission:
    state = request.app.state
    route = route or public_route(request.url.path)
    request.state.client_ip = client_ip(request.scope, _settings(request).trusted_proxies)
    admission = await admit(
        verifier=state.verifier,
        limiter=state.rate_limiter,
        policies=state.rate_policies,
        caller_required=route.access.requires_caller(request.method.upper()),
        authorization=request.headers.get("authorization"),
        client_ip=request.state.client_ip,
        username=await _username(request, route),
    )
    request.state.principal = admission.principal
    return admission


def _add_headers(exc: DomainError, headers: dict[str, str]) -> None:
    for name, value in headers.items():
        exc.headers.setdefault(name, value)


class ProxyEndpoint:
    """The ASGI app of the routes forwarded to one upstream."""

    def __init__(self, upstream_name: str) -> None:
        self.upstream_name = upstream_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.proxy(Request(scope, receive))
        await response(scope, receive, send)

    async def proxy(self, request: Request) -> Response:
        upstream: Upstream = request.app.state.upstreams[self.upstream_name]
        route = public_route(request.url.path)
        cache: EdgeCache | None = request.app.state.edge_cache if route.cached else None
        from_cache = cache if request.method == "GET" else None
        if from_cache is None:  # before any work: the upstream would refuse it anyway
            _refuse_if_throttled(upstream, request.method)
        admission = await _admit(request, route)
        target = upstream_target(request.scope)
        body = await request.body()

        async def forward(headers: RawHeaders) -> UpstreamAnswer:
            if from_cache is not None:  # only once the cache has no answer to give
                _refuse_if_throttled(upstream, request.method)
            answer = await call(
                upstream=upstream,
                method=request.method,
                target=target,
                headers=headers,
                body=body,
                deadline_seconds=_settings(request).upstream_deadline_seconds,
            )
            throttle = upstream.throttle(request.method)
            if shedding(answer.headers):
                throttle.shed()
            else:
                throttle.accepted()
            return answer

        headers = upstream_request_headers(request.scope, client_ip=_forwarded_for(request))
        path = normalized_path(request.url.path)
        try:
            if from_cache is not None:
                answer = await from_cache.get(
                    path=path, target=target, headers=headers, fetch=forward
                )
            else:
                answer = await forward(headers)
        except DomainError as exc:
            _add_headers(exc, admission.headers)
            raise
        if cache is not None and request.method not in SAFE_METHODS and answer.status < 400:
            await cache.purge(purged_by_write(path))
        head = request.method == "HEAD"
        response = Response(content=b"" if head else answer.body, status_code=answer.status)
        response.raw_headers = relayed_response_headers(
            answer.headers, status=answer.status, body_length=len(answer.body), head=head
        )
        response.headers.update(admission.headers)
        return response


def _refuse_if_throttled(upstream: Upstream, method: str) -> None:
    if not upstream.throttle(method).allow():
        THROTTLED.labels(upstream.name).inc()
        raise UpstreamOverloadedError(
            "The service behind this route is at capacity; retry after Retry-After seconds."
        )


class TemplateRoute(Route):
    """A plain route that names itself in the scope as FastAPI's own routes do, so the chassis
    labels request metrics and spans with its path template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


async def bff_home(request: Request) -> Response:
    admission = await _admit(request)
    screen = await home(
        upstreams=request.app.state.upstreams,
        authorization=request.headers["authorization"],
        forwarded=forwarded_headers(request.scope, _forwarded_for(request)),
        part_timeout=_settings(request).bff_part_timeout_seconds,
    )
    return JSONResponse(screen, headers=admission.headers)


async def _admitted(request: Request) -> Admission:
    return await _admit(request)


async def admin_audit(
    request: Request,
    admission: Annotated[Admission, Depends(_admitted)],
    query: Annotated[AuditQuery, Query()],
) -> Response:
    """The audit trails of auth, catalog and worker merged (gateway.audit); admins only."""
    try:
        page = await audit_trail(
            upstreams=request.app.state.upstreams,
            query=query,
            authorization=request.headers["authorization"],
            forwarded=forwarded_headers(request.scope, _forwarded_for(request)),
            deadline=_settings(request).upstream_deadline_seconds,
        )
    except TrailAnswerError as refused:  # the service's own problem: 403, 422, ...
        answer = refused.answer
        response = Response(content=answer.body, status_code=answer.status)
        response.raw_headers = relayed_response_headers(
            answer.headers, status=answer.status, body_length=len(answer.body), head=False
        )
        response.headers.update(admission.headers)
        return response
    except DomainError as exc:
        _add_headers(exc, admission.headers)
        raise
    return JSONResponse(page.model_dump(mode="json"), headers=admission.headers)


def bff_router() -> APIRouter:
    router = APIRouter(tags=["gateway"])
    router.add_api_route(
        AUDIT_PATH,
        admin_audit,
        methods=["GET"],
        response_model=AuditPage,
        summary="The audit trail of auth and admin actions, newest first (admins only)",
        responses={
            200: {"description": "One page of the merged trail of auth, catalog and worker."},
            403: {"description": "The caller is not an admin."},
            422: {"description": "A filter or the cursor is not valid."},
        },
    )
    router.add_api_route(
        BFF_HOME,
        bff_home,
        methods=["GET"],
        summary="The home screen's data in one call",
        responses={200: {"description": "Each part, and the parts that failed in `degraded`."}},
    )
    return router


def proxy_routes() -> list[TemplateRoute]:
    """One route per proxied template; any other path is a 404 problem."""
    return [
        TemplateRoute(
            route.template,
            ProxyEndpoint(route.upstream),
            methods=PROXIED_METHODS,
            name=f"proxy_to_{route.upstream}",
            include_in_schema=False,
        )
        for route in proxied_routes()
    ]


def mount_proxy_routes(app: FastAPI) -> None:
    """Add the proxied routes to the app's own router, after the routes already there."""
    app.router.routes.extend(proxy_routes())
