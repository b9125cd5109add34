"""The public API's OpenAPI document (`GET /openapi.json`) and its docs page (`GET /docs`).

The gateway owns no endpoint of the public API but its own aggregated ones; each service
documents its own operations. So the public document is assembled from the services' documents,
fetched from them (a service's document describes the code actually deployed, so a rolling
update shows up within `PUBLIC_API_TTL_SECONDS`) and kept to what the route table exposes, under
the same public paths. On top it says what the gateway adds to every operation: the bearer
scheme (required where the access policy requires a caller, optional elsewhere, since any token
presented is checked), and the answers the edge can give whatever the service would: 401, 413,
429 and 502/503/504, all RFC 9457 problems.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, JSONResponse

from chassis.openapi import document_problems
from chassis.problems import DomainError
from gateway.routes import ROUTES, requires_caller, upstream_names
from gateway.upstreams import Upstream

PUBLIC_API_TTL_SECONDS = 60.0
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
# What the edge can answer on any route, whatever the service behind it says.
EDGE_ANSWERS = {
    "401": "A bearer token was presented and is not valid (or the route needs one).",
    "413": "The request body is larger than the gateway accepts.",
    "429": "Over the caller's request rate; retry after `Retry-After`.",
    "502": "The service behind this route gave no valid answer.",
    "503": "The service behind this route is unavailable or at capacity; see `Retry-After`.",
    "504": "The service behind this route did not answer in time.",
}


class DocumentUnavailableError(DomainError):
    status, code, title = 503, "api-document-unavailable", "The API document is unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = "5"


def _routed_to(path: str, upstream: str) -> bool:
    """Whether the route table sends the public `path` (an OpenAPI template) to `upstream`."""
    for route in ROUTES:
        if route.upstream != upstream:
            continue
        prefix = route.prefix
        if (prefix is not None and path.startswith(prefix + "/")) or path == route.template:
            return True
    return False


def _sample_path(template: str) -> str:
    """A concrete path of an OpenAPI path template, for the access policy's path rules."""
    return "/".join("x" if part.startswith("{") else part for part in template.split("/"))


def _rename_schemas(document: dict[str, Any], taken: Mapping[str, Any], prefix: str) -> None:
    """Rename this document's schemas whose names another service uses for something else."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    clashes = {n for n, s in schemas.items() if n in taken and taken[n] != s}
    if not clashes:
        return
    text = json.dumps(document)
    for name in clashes:
        text = text.replace(
            f'"#/components/schemas/{name}"', f'"#/components/schemas/{prefix}{name}"'
        )
    renamed = json.loads(text)
    renamed_schemas = renamed.get("components", {}).get("schemas", {})
    for name in clashes:
        renamed_schemas[f"{prefix}{name}"] = renamed_schemas.pop(name)
    document.clear()
    document.update(renamed)


def merge(title: str, version: str, documents: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The public document from `documents` (service name -> its document; "gateway" for the
    gateway's own operations, kept whole)."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The public API of Fleet, as served through its gateway.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {"bearer": BEARER_SCHEME}},
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    for service, original in documents.items():
        document = copy.deepcopy(original)
        _rename_schemas(document, schemas, service.capitalize())
        for path, operations in document.get("paths", {}).items():
            if service != "gateway" and not _routed_to(path, service):
                continue
            for method, operation in operations.items():
                if method not in METHODS:
                    continue
                if requires_caller(method.upper(), _sample_path(path)):
                    operation["security"] = [{"bearer": []}]
                elif not operation.get("security"):
                    operation["security"] = [{}, {"bearer": []}]
                operation.setdefault("tags", [service])
            merged["paths"][path] = operations
        schemas.update(document.get("components", {}).get("schemas", {}))
    document_problems(merged, extra=EDGE_ANSWERS)
    return merged


class PublicApi:
    """The merged document, rebuilt from the services' documents at most every `ttl` seconds."""

    def __init__(self, ttl: float = PUBLIC_API_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._document: dict[str, Any] | None = None
        self._built_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self, app: FastAPI) -> dict[str, Any]:
        async with self._lock:
            if self._document is None or time.monotonic() - self._built_at > self.ttl:
                self._document = await self._build(app)
                self._built_at = time.monotonic()
            return self._document

    async def _build(self, app: FastAPI) -> dict[str, Any]:
        upstreams: Mapping[str, Upstream] = app.state.upstreams
        names = upstream_names()
        fetched = await asyncio.gather(*(_fetch(upstreams[name]) for name in names))
        return merge(
            "Fleet",
            app.version,
            {"gateway": app.openapi(), **dict(zip(names, fetched, strict=True))},
        )


async def _fetch(upstream: Upstream) -> dict[str, Any]:
    try:
        response = await upstream.client.get(f"{upstream.base_url}/openapi.json")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        msg = (
            f"The {upstream.name} service's API document could not be read ({type(exc).__name__})."
        )
        raise DocumentUnavailableError(msg) from exc
    return document


async def openapi_document(request: Request) -> JSONResponse:
    public: PublicApi = request.app.state.public_api
    return JSONResponse(await public.document(request.app))


async def docs_page(_: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Fleet public API")


def public_api_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/openapi.json", openapi_document, methods=["GET"])
    router.add_api_route("/docs", docs_page, methods=["GET"])
    return router
