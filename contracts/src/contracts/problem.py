"""The RFC 9457 problem document every Fleet error response carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """`application/problem+json`; extension members (e.g. `errors`) are kept."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ValidationIssue] | None = None
