"""The service's OpenAPI document tells the whole truth about errors.

FastAPI documents the success answer and a 422 of its own shape; the chassis answers every
error as an RFC 9457 problem (`application/problem+json`). This adds, to every operation, the
problem answers the chassis itself can give it: 400 (a body that is not JSON, a header that is
not valid), 413 (a body past the limit), 422 (validation, as a problem with `errors`), 503 (the
in-flight bound, with `Retry-After`); 404 to operations on a resource named in the path; and
401/403 to operations that take a bearer token. The
statuses an operation documents itself (404, 409, ...) get the problem schema too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from chassis.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
    "additionalProperties": True,
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

# Answers the chassis gives any operation, whatever its code does.
ALWAYS: dict[str, str] = {
    "400": "Malformed request: the body is not JSON, or a header is not valid.",
    "413": "The request body is larger than the service accepts.",
    "422": "The request is not valid: `errors` lists each problem.",
    "503": "At capacity right now (or a dependency is down); retry after `Retry-After`.",
}
ADDRESSED: dict[str, str] = {"404": "No such resource (or not one the caller may see)."}
AUTHENTICATED: dict[str, str] = {
    "401": "No bearer token, or one that is not valid (expired, wrong signature, ...).",
    "403": "The token is valid but its holder may not do this.",
}


def problem_answer(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if retry_after:
        answer["headers"] = RETRY_AFTER
    return answer


def document_problems(document: dict[str, Any], *, extra: dict[str, str] | None = None) -> None:
    """Give every operation of `document` its problem answers (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "delete", "options", "head", "patch", "trace"}:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            wanted = dict(ALWAYS)
            if "{" in path:
                wanted.update(ADDRESSED)
            if operation.get("security"):
                wanted.update(AUTHENTICATED)
            wanted.update(extra or {})
            for status, description in wanted.items():
                responses.setdefault(status, {"description": description})
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    text = answer.get("description") or wanted.get(status, "Error")
                    if status == "422":
                        text = ALWAYS["422"]
                    responses[status] = problem_answer(text, retry_after=status in ("429", "503"))


def install_documented_problems(app: FastAPI) -> None:
    """Serve `app`'s OpenAPI document with every operation's problem answers."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            document_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
