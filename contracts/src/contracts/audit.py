"""The audit trail as the admin API serves it: one record, a page of them, the query.

Each service that audits (auth, catalog, worker) serves its own trail in this shape, and the
gateway merges theirs into one (`GET /v1/admin/audit`), so the shape is shared. A page is newest
first, keyed by `(at, id)`; its `next_cursor` is an opaque token for the next page.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

AUDIT_MAX_PAGE_SIZE = 100
AUDIT_DEFAULT_PAGE_SIZE = 50
ACTOR_MAX_LENGTH = 320
ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
ACTION_MAX_LENGTH = 100
CURSOR_MAX_LENGTH = 200


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class AuditRecord(BaseModel):
    """Who did what to which target, when, from where, in which request, and how it ended."""

    id: uuid.UUID
    at: AwareDatetime
    service: str
    actor: str = Field(description="The user's id, `anonymous`, or `operator` (a CLI command).")
    action: str = Field(description="What was done, e.g. `auth.login` or `catalog.product.update`.")
    target: str | None = Field(description="The id of what the action was done to.")
    outcome: AuditOutcome
    client_ip: str | None
    request_id: str | None
    details: dict[str, Any] = Field(
        default_factory=dict, description="Facts about the action; never a secret."
    )


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None


class AuditQuery(BaseModel):
    """The filters and the page of a read of the trail; every filter narrows it."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, min_length=1, max_length=ACTOR_MAX_LENGTH)
    action: str | None = Field(default=None, max_length=ACTION_MAX_LENGTH, pattern=ACTION_PATTERN)
    since: AwareDatetime | None = Field(default=None, description="Records at or after this time.")
    until: AwareDatetime | None = Field(default=None, description="Records before this time.")
    limit: int = Field(default=AUDIT_DEFAULT_PAGE_SIZE, ge=1)
    cursor: str | None = Field(default=None, max_length=CURSOR_MAX_LENGTH)

    @model_validator(mode="after")
    def _window_not_empty(self) -> Self:
        if self.since is not None and self.until is not None and self.since >= self.until:
            msg = "`since` must be before `until`"
            raise ValueError(msg)
        return self

    def capped_limit(self) -> int:
        """The page size served: a `limit` above the maximum is capped, not refused."""
        return min(self.limit, AUDIT_MAX_PAGE_SIZE)

    def parameters(self, *, cursor: str | None) -> dict[str, str]:
        """The query string of this read with another cursor (what the gateway sends on)."""
        values: dict[str, Any] = {
            "actor": self.actor,
            "action": self.action,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "limit": self.capped_limit(),
            "cursor": cursor,
        }
        return {name: str(value) for name, value in values.items() if value is not None}
