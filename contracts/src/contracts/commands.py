"""Fleet's commands: a task addressed to one handler, processed once by one of its replicas.

An event says what happened and any number of services may react; a command asks for one thing
to be done ("generate this export") and exactly one service does it. A command travels in the
same CloudEvents envelope as an event (`type` names its versioned payload class here, `data` is
the payload), through the sender's outbox (it is sent if and only if the sender's transaction
commits), but to the command exchange, whose one queue per handling service
(`<service>.commands`) its replicas compete on. The consumer that takes it is the same idempotent
consumer as for events: inbox dedupe, retries with backoff, the dead-letter queue.

Payloads follow the events' rule: frozen once their schema is committed
(`contracts/schemas/<type>.json`), compatible changes only, anything else a new version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from contracts.events.envelope import EventPayload
from contracts.events.payloads import EVENT_TYPES


class CommandPayload(EventPayload):
    """Base of every command's `data`; `event_type` is the command's versioned type (the
    envelope's `type`) and `handled_by` the one service whose command queue takes it."""

    handled_by: ClassVar[str]


class ExportFormat(StrEnum):
    """How an export's file is written."""

    CSV = "csv"
    """Comma-separated values with a header row, one row per order line."""
    JSONL = "jsonl"
    """JSON Lines: one order per line, its lines nested."""


class GenerateExportV1(CommandPayload):
    """Write an export of orders to object storage: one customer's orders (`user_id`), or every
    order in the time range when an admin asked (`user_id` absent)."""

    event_type: ClassVar[str] = "export.generate.v1"
    handled_by: ClassVar[str] = "worker"

    export_id: UUID
    requested_by: UUID
    """The user who asked for it (and is mailed when it is ready)."""
    user_id: UUID | None = None
    """Whose orders: absent for an admin's export of all orders."""
    format: ExportFormat
    created_since: datetime | None = None
    """Orders created at or after this instant (no lower bound when absent)."""
    created_until: datetime | None = None
    """Orders created before this instant (no upper bound when absent)."""


class ReconciliationTrigger(StrEnum):
    SCHEDULE = "schedule"
    """The worker's schedule (one replica sends it per period)."""
    ADMIN = "admin"
    """An admin asked for a run now."""


class RunReconciliationV1(CommandPayload):
    """Compare what orders and catalog believe about the orders they share and report drift."""

    event_type: ClassVar[str] = "reconciliation.run.v1"
    handled_by: ClassVar[str] = "worker"

    reconciliation_id: UUID
    trigger: ReconciliationTrigger
    settle_seconds: int = Field(default=60, ge=0)
    """Orders changed more recently than this are still in flight (their saga may be between
    two steps) and are left out of the comparison."""


COMMAND_TYPES: dict[str, type[EventPayload]] = {
    payload.event_type: payload for payload in (GenerateExportV1, RunReconciliationV1)
}

if COMMAND_TYPES.keys() & EVENT_TYPES.keys():  # pragma: no cover - a definition error
    msg = f"types both a command and an event: {sorted(COMMAND_TYPES.keys() & EVENT_TYPES.keys())}"
    raise RuntimeError(msg)


def is_command(message_type: str) -> bool:
    """Whether a message of this `type` is a command (else an event)."""
    return message_type in COMMAND_TYPES
