"""The HTTP shapes of reconciliation runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class ReconciliationOut(BaseModel):
    id: uuid.UUID
    trigger: str = Field(description="schedule or admin")
    status: str = Field(description="pending, completed or failed")
    created_at: datetime
    finished_at: datetime | None
    orders_checked: int | None = Field(description="Settled orders compared.")
    reservations_checked: int | None
    mismatches: int | None = Field(description="Drift found in all (completed runs).")
    mismatches_by_kind: dict[str, int] | None
    report_url: str | None = Field(
        description="A presigned URL of the run's report (JSON), valid for minutes."
    )


class ReconciliationList(BaseModel):
    items: list[ReconciliationOut]
