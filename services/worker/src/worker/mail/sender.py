"""The background sender: claims due notifications, sends each over SMTP, settles the row.

A failed send is retried after a full-jitter exponential delay until `EMAIL_MAX_ATTEMPTS`, then
the notification is marked `failed` (logged as `email_failed`, counted in
`worker_emails_total{outcome="failed"}`).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from worker.backoff import full_jitter
from worker.mail.repository import ClaimedMail, MailRepository
from worker.mail.smtp import PermanentMailError, SmtpConnections, SmtpServer, compose
from worker.metrics import EMAILS
from worker.settings import WorkerSettings

# Mails sent at once by one replica (each on its own SMTP session, kept open between mails).
CONCURRENCY = 8

log = get_logger(__name__)


class MailSender:
    """`loop` claims due mails and sends each in a task of its own; `loop.wake()` when a mail
    was staged."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], settings: WorkerSettings
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._smtp = SmtpConnections(
            SmtpServer.from_url(settings.smtp_url), timeout=settings.smtp_timeout_seconds
        )
        # A claim outlives the send's own deadline, so a live sender is never raced.
        self._lease_seconds = 2 * settings.smtp_timeout_seconds + 5
        self.loop = BackgroundLoop(
            "mail_sender",
            self.claim_and_send,
            every_seconds=settings.worker_poll_seconds,
            on_stop=self._smtp.close,
        )

    async def claim_and_send(self) -> bool:
        """Claim what is due (as much as free sessions allow) and start sending each; whether
        more may be due already."""
        free = CONCURRENCY - self.loop.in_flight
        if free <= 0:
            return False
        async with UnitOfWork(self._sessions) as uow:
            claimed = await uow.repository(MailRepository).claim(
                limit=free, lease_seconds=self._lease_seconds
            )
            await uow.commit()
        for mail in claimed:
            self.loop.spawn(self._deliver(mail), name=f"mail-{mail.id}")
        return len(claimed) == free

    async def _deliver(self, mail: ClaimedMail) -> None:
        message = compose(
            event_id=mail.event_id,
            sender=self._settings.smtp_from,
            to=mail.recipient,
            subject=mail.subject,
            body=mail.body,
        )
        try:
            async with asyncio.timeout(self._settings.smtp_timeout_seconds * 2):
                await self._smtp.send(message)
        except PermanentMailError as exc:
            await self._fail(mail, f"refused: {exc}")
            return
        except Exception as exc:
            await self._retry_or_fail(mail, f"{type(exc).__name__}: {exc}")
            return
        async with UnitOfWork(self._sessions) as uow:
            await uow.repository(MailRepository).mark_sent(mail.id)
            await uow.commit()
        EMAILS.labels(mail.kind, "sent").inc()
        log.info("email_sent", kind=mail.kind, event_id=str(mail.event_id), attempts=mail.attempts)

    async def _retry_or_fail(self, mail: ClaimedMail, error: str) -> None:
        if mail.attempts >= self._settings.email_max_attempts:
            await self._fail(mail, error)
            return
        delay = full_jitter(
            mail.attempts,
            base=self._settings.email_backoff_base_seconds,
            cap=self._settings.email_backoff_cap_seconds,
        )
        async with UnitOfWork(self._sessions) as uow:
            await uow.repository(MailRepository).retry_later(
                mail.id, delay_seconds=delay, error=error
            )
            await uow.commit()
        EMAILS.labels(mail.kind, "retried").inc()
        log.warning(
            "email_retry_scheduled",
            kind=mail.kind,
            event_id=str(mail.event_id),
            attempts=mail.attempts,
            delay_seconds=round(delay, 3),
            error=error[:300],
        )

    async def _fail(self, mail: ClaimedMail, error: str) -> None:
        async with UnitOfWork(self._sessions) as uow:
            await uow.repository(MailRepository).mark_failed(mail.id, error=error)
            await uow.commit()
        EMAILS.labels(mail.kind, "failed").inc()
        log.error(
            "email_failed",
            kind=mail.kind,
            event_id=str(mail.event_id),
            attempts=mail.attempts,
            error=error[:300],
        )
