"""Writing events: in the same transaction as the state change they announce.

Nothing is sent to the broker here (no dual write): the row commits or rolls back with the
domain rows, and `pg_notify` (delivered only on commit) wakes the relay.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.messaging.context import (
    current_causation_id,
    current_correlation_id,
    current_traceparent,
)
from chassis.messaging.tables import outbox_table
from contracts.events import CloudEvent, EventPayload, new_event


class Outbox:
    def __init__(
        self, metadata: sa.MetaData, *, source: str, retention_index: bool = False
    ) -> None:
        """`retention_index`: the service's migrations built the index its purge needs."""
        self.table = outbox_table(metadata, retention_index=retention_index)
        self.retention_index = retention_index
        self.schema = metadata.schema or "public"
        self.source = source

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
        # One round trip: the row and the wake-up of the relay (sent only if this commits).
        staged = (
            sa.insert(self.table)
            .values(
                event_id=event.id,
                event_type=event.type,
                subject=subject,
                body=json.loads(event.to_json()),
            )
            .returning(self.table.c.id)
            .cte("staged")
        )
        await session.execute(sa.select(sa.func.pg_notify(self.channel, "")).select_from(staged))
        return event
