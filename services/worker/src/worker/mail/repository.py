"""Notifications in Postgres: staged with their event, then claimed, sent and settled.

A claim is a lease: the row stays `pending` but its `next_attempt_at` moves past the send's
deadline, so another replica (or this one after a restart) takes it again only if this attempt
never settled. `attempts` counts claims, so a mail that crashes its sender still runs out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from chassis.db import Repository
from chassis.sql import qualified, sql
from worker.mail.templates import Mail
from worker.models import ERROR_MAX_LENGTH, Notification

_NOTIFICATIONS = qualified(Notification.__table__)  # type: ignore[arg-type]
_STAGE = f"""
INSERT INTO {_NOTIFICATIONS} (event_id, kind, recipient, subject, body)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING
"""  # noqa: S608 - table names from the model, values as parameters
_CLAIM = f"""
UPDATE {_NOTIFICATIONS} SET attempts = attempts + 1, next_attempt_at = now() + $2::interval
WHERE id IN (
  SELECT id FROM {_NOTIFICATIONS}
  WHERE status = 'pending' AND next_attempt_at <= now()
  ORDER BY next_attempt_at LIMIT $1
  FOR UPDATE SKIP LOCKED
)
RETURNING id, event_id, kind, recipient, subject, body, attempts
"""  # noqa: S608
# Settling an attempt: only a mail still pending (a late settle never undoes a newer one).
_SENT = f"""
UPDATE {_NOTIFICATIONS} SET status = 'sent', sent_at = now(), last_error = NULL
WHERE id = $1 AND status = 'pending'
"""  # noqa: S608
_RETRY = f"""
UPDATE {_NOTIFICATIONS} SET next_attempt_at = now() + $2::interval, last_error = $3
WHERE id = $1 AND status = 'pending'
"""  # noqa: S608
_FAILED = f"""
UPDATE {_NOTIFICATIONS} SET status = 'failed', last_error = $2
WHERE id = $1 AND status = 'pending'
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class ClaimedMail:
    id: uuid.UUID
    event_id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    body: str
    attempts: int


class MailRepository(Repository):
    """The mails the worker owes: staged by the handlers, claimed and settled by the sender."""

    async def stage(self, *, event_id: uuid.UUID, recipient: str, mail: Mail) -> None:
        """Owe one mail for the event (a second one for the same event is ignored)."""
        await (await sql(self._session)).execute(
            _STAGE, event_id, mail.kind, recipient, mail.subject, mail.body
        )

    async def claim(self, *, limit: int, lease_seconds: float) -> list[ClaimedMail]:
        """Lease up to `limit` due mails, the longest waiting first (one statement: no BEGIN)."""
        rows = await (await sql(self._session, begin=False)).fetch(
            _CLAIM, limit, timedelta(seconds=lease_seconds)
        )
        return [ClaimedMail(*row) for row in rows]

    async def mark_sent(self, mail_id: uuid.UUID) -> None:
        await (await sql(self._session, begin=False)).execute(_SENT, mail_id)

    async def retry_later(self, mail_id: uuid.UUID, *, delay_seconds: float, error: str) -> None:
        await (await sql(self._session, begin=False)).execute(
            _RETRY, mail_id, timedelta(seconds=delay_seconds), error[:ERROR_MAX_LENGTH]
        )

    async def mark_failed(self, mail_id: uuid.UUID, *, error: str) -> None:
        await (await sql(self._session, begin=False)).execute(
            _FAILED, mail_id, error[:ERROR_MAX_LENGTH]
        )
