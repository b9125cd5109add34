"""RFC 9457 problem details: every error leaves a service as `application/problem+json`.

Services raise :class:`DomainError` subclasses and never HTTP errors; the handlers installed by
:func:`install_problem_handlers` turn those, validation failures, unknown routes and unexpected
crashes into problem documents. A crash is logged with its traceback but the client only ever sees
a generic 500 body with the request id to quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://fleet.dev/problems/"


class DomainError(Exception):
    """Base of the errors a service's use cases raise; subclasses set the class attributes."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions
        self.headers: dict[str, str] = {}


class NotFoundError(DomainError):
    status, code, title = 404, "not-found", "Not found"


class ConflictError(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class UnauthorizedError(DomainError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'


class ForbiddenError(DomainError):
    status, code, title = 403, "forbidden", "Forbidden"


class UnprocessableError(DomainError):
    status, code, title = 422, "validation-error", "Request is not valid"


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or title or HTTPStatus(status).phrase,
    }
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = getattr(request.state, "request_id", None)
    body.update(extensions or {})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Keep location, message and type; never echo the (possibly huge or secret) input."""
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in errors
    ]


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem_response(
            request,
            status=400,
            code="malformed-json",
            title="Malformed JSON body",
            detail="The request body is not valid JSON.",
        )
    return problem_response(
        request,
        status=422,
        code="validation-error",
        title="Request is not valid",
        detail="One or more fields are missing or invalid.",
        extensions={"errors": _validation_errors(errors)},
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    code = phrase.lower().replace(" ", "-").replace("'", "")
    return problem_response(
        request, status=status, code=code, title=phrase, detail=detail, headers=exc.headers
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    # Unexpected exceptions are turned into a 500 problem by RequestContextMiddleware, which
    # still knows the request id and can log the traceback once.
