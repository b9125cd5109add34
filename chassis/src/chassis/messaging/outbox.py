"""Writing events: in the same transaction as the state change they announce.

Nothing is sent to the broker here (no dual write): the row commits or rolls back with the
domain rows, and `pg_notify` (delivered only on commit) wakes the relay.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.messaging.context import (
    current_causation_id,
    current_correlation_id,
    current_traceparent,
)
from chassis.messaging.tables import outbox_table
from chassis.sql import qualified, sql
from contracts.events import CloudEvent, EventPayload, new_event

# The row and the relay's wake-up in one round trip; NOTIFY is delivered only if this commits.
_STAGE = """
WITH staged AS (
  INSERT INTO {table} (event_id, event_type, subject, body) VALUES ($1, $2, $3, $4) RETURNING id
)
SELECT pg_notify($5, '') FROM staged
"""


class Outbox:
    def __init__(
        self,
        metadata: sa.MetaData,
        *,
        source: str,
        retention_index: bool = False,
        pending_index: bool = False,
    ) -> None:
        """`retention_index`, `pending_index`: the service's migrations built the index its
        purge needs, the index the relay's claim needs."""
        self.table = outbox_table(
            metadata, retention_index=retention_index, pending_index=pending_index
        )
        self.retention_index = retention_index
        self.schema = metadata.schema or "public"
        self.source = source
        self._stage = _STAGE.format(table=qualified(self.table))

    @property
    def channel(self) -> str:
        """The NOTIFY channel the relay listens on."""
        return f"{self.schema}_outbox"

    async def add(
        self, session: AsyncSession, payload: EventPayload, *, subject: str | None = None
    ) -> CloudEvent:
        """Stage an event in the caller's transaction; it inherits the current correlation id,
        the event being handled as its cause, and the current trace."""
        event = new_event(
            payload,
            source=self.source,
            subject=subject,
            traceparent=current_traceparent(),
            correlation_id=current_correlation_id(),
            causation_id=current_causation_id(),
        )
        await (await sql(session)).execute(
            self._stage, event.id, event.type, subject, event.to_json().decode(), self.channel
        )
        return event
