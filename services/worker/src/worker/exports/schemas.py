"""The HTTP shapes of exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.commands import ExportFormat


class ExportScope(StrEnum):
    MINE = "mine"
    """The caller's own orders."""
    ALL = "all"
    """Every customer's orders (admins only)."""


class ExportIn(BaseModel):
    """`{format, scope, created_since, created_until}`, every field optional: the caller's whole
    history as CSV by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: ExportFormat = ExportFormat.CSV
    scope: ExportScope = ExportScope.MINE
    created_since: AwareDatetime | None = None
    """Orders created at or after this instant."""
    created_until: AwareDatetime | None = None
    """Orders created before this instant."""

    @model_validator(mode="after")
    def _range_not_empty(self) -> ExportIn:
        since, until = self.created_since, self.created_until
        if since is not None and until is not None and since >= until:
            msg = "created_since must be before created_until"
            raise ValueError(msg)
        return self


class ExportOut(BaseModel):
    """An export as its requester reads it; `download_url` only once it is `ready`."""

    id: uuid.UUID
    status: str = Field(description="pending, ready or failed")
    format: ExportFormat
    scope: ExportScope
    created_since: datetime | None
    created_until: datetime | None
    created_at: datetime
    finished_at: datetime | None
    order_count: int | None = Field(description="Orders in the file (ready exports).")
    size_bytes: int | None
    reason: str | None = Field(description="Why it failed (failed exports).")
    download_url: str | None = Field(
        description="A presigned URL of the file, valid until `download_expires_at`; ask again "
        "for a fresh one."
    )
    download_expires_at: datetime | None
