"""Notifications in Postgres: staged with their event, then claimed, sent and settled.

A claim is a lease: the row stays `pending` but its `next_attempt_at` moves past the send's
deadline, so another replica (or this one after a restart) takes it again only if this attempt
never settled. `attempts` counts claims, so a mail that crashes its sender still runs out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.mail.templates import Mail
from worker.models import ERROR_MAX_LENGTH, Notification, NotificationStatus

PENDING = NotificationStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    id: uuid.UUID
    event_id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    body: str
    attempts: int


async def stage(session: AsyncSession, *, event_id: uuid.UUID, recipient: str, mail: Mail) -> None:
    """Owe one mail for the event (a second one for the same event is ignored)."""
    await session.execute(
        insert(Notification)
        .values(
            event_id=event_id,
            kind=mail.kind,
            recipient=recipient,
            subject=mail.subject,
            body=mail.body,
        )
        .on_conflict_do_nothing(index_elements=[Notification.event_id])
    )


async def claim(session: AsyncSession, *, limit: int, lease_seconds: float) -> list[ClaimedMail]:
    due = (
        select(Notification.id)
        .where(Notification.status == PENDING, Notification.next_attempt_at <= func.now())
        .order_by(Notification.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        update(Notification)
        .where(Notification.id.in_(due))
        .values(
            attempts=Notification.attempts + 1,
            next_attempt_at=func.now() + timedelta(seconds=lease_seconds),
        )
        .returning(
            Notification.id,
            Notification.event_id,
            Notification.kind,
            Notification.recipient,
            Notification.subject,
            Notification.body,
            Notification.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    return [ClaimedMail(*row) for row in rows]


async def mark_sent(session: AsyncSession, mail_id: uuid.UUID) -> None:
    await _settle(session, mail_id, status="sent", sent_at=func.now(), last_error=None)


async def retry_later(
    session: AsyncSession, mail_id: uuid.UUID, *, delay_seconds: float, error: str
) -> None:
    await _settle(
        session,
        mail_id,
        next_attempt_at=func.now() + timedelta(seconds=delay_seconds),
        last_error=error[:ERROR_MAX_LENGTH],
    )


async def mark_failed(session: AsyncSession, mail_id: uuid.UUID, *, error: str) -> None:
    await _settle(session, mail_id, status="failed", last_error=error[:ERROR_MAX_LENGTH])


async def _settle(session: AsyncSession, mail_id: uuid.UUID, **values: object) -> None:
    await session.execute(
        update(Notification)
        .where(Notification.id == mail_id, Notification.status == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
