"""The `export.generate.v1` command's handler: orders streamed from the orders service, written
to object storage as they arrive, the export marked ready and its requester mailed.

Constant memory whatever the export's size: orders come in keyset pages
(`worker.sources.OrdersSource`), are encoded into chunks (`worker.exports.encoding`) and
uploaded a part at a time (`chassis.storage.ObjectStore.upload`, multipart above one part).

Exactly once, through the command consumer's unit of work: the command's id is in the inbox, the
export row is locked, and the file, the `ready` mark and the e-mail owed commit together. A
replica killed mid-export commits nothing: the broker gives the command to another replica, which
writes the whole file again under the same key (the abandoned upload's parts are aborted, or
expire by the bucket's lifecycle rule) and commits it once. A redelivered command finds its id
in the inbox, or the export no longer pending, and changes nothing.

Orders read from the orders service, not from a read model fed by events: an export is what the
orders service holds now (a status changed a second ago is in it), and the worker keeps no copy
of every order to drift from the original.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from chassis.messaging.handlers import PermanentError
from chassis.storage import ObjectStore
from contracts.commands import ExportFormat, GenerateExportV1
from contracts.events import CloudEvent
from worker.exports.encoding import CONTENT_TYPES, Tally, encode
from worker.exports.repository import ExportRepository
from worker.mail import templates
from worker.mail.repository import MailRepository
from worker.metrics import EXPORT_READY, EXPORTS
from worker.models import Export, ExportStatus
from worker.sources import OrdersSource, SourceRefusedError
from worker.users import UnknownUserError, UserRepository

log = get_logger(__name__)

OBJECT_PREFIX = "exports/"


def object_key(export_id: object, fmt: ExportFormat) -> str:
    return f"{OBJECT_PREFIX}{export_id}.{fmt.value}"


class ExportGenerator:
    def __init__(
        self,
        *,
        orders: OrdersSource,
        store: ObjectStore,
        wake_mail: Callable[[], None],
        link_ttl_seconds: int,
    ) -> None:
        self.orders = orders
        self.store = store
        self._wake_mail = wake_mail
        self.link_ttl_seconds = link_ttl_seconds

    async def generate(self, uow: UnitOfWork, event: CloudEvent, payload: GenerateExportV1) -> None:
        exports = uow.repository(ExportRepository)
        export = await exports.locked(payload.export_id)
        if export is None:
            msg = f"export {payload.export_id} does not exist"
            raise PermanentError(msg)
        if export.status != ExportStatus.PENDING:
            log.info("export_already_settled", export_id=str(export.id), status=export.status)
            return
        key = object_key(export.id, payload.format)
        tally = Tally()
        rows = self.orders.orders(
            user_id=payload.user_id,
            created_since=payload.created_since,
            created_until=payload.created_until,
            order_by="created",
        )
        try:
            stored = await self.store.upload(
                key,
                encode(rows, payload.format, tally),
                content_type=CONTENT_TYPES[payload.format],
            )
        except SourceRefusedError as exc:
            # Orders refuses the worker's read (its token, the contract): another try would
            # be refused the same way, so the export fails now, with the reason.
            await exports.mark_failed(export, f"orders could not be read: {exc.detail}")
            uow.after_commit(lambda: EXPORTS.labels(payload.format.value, "failed").inc())
            log.error("export_failed", export_id=str(export.id), reason=str(exc))
            return
        await exports.mark_ready(
            export, object_key=key, order_count=tally.orders, size_bytes=stored.size_bytes
        )
        await self._mail(uow, event, export)
        waited = (datetime.now(UTC) - export.created_at).total_seconds()
        uow.after_commit(lambda: _count_ready(payload.format, waited))
        log.info(
            "export_ready",
            export_id=str(export.id),
            orders=tally.orders,
            size_bytes=stored.size_bytes,
        )

    async def _mail(self, uow: UnitOfWork, event: CloudEvent, export: Export) -> None:
        try:
            recipient = await uow.repository(UserRepository).email_of(export.requested_by)
        except UnknownUserError:
            # An account the worker never heard of (no `user.registered`): the export is still
            # ready, and its requester reads it through the API.
            log.warning("export_ready_not_mailed", export_id=str(export.id))
            return
        mail = templates.export_ready(
            export_id=export.id,
            order_count=export.order_count or 0,
            fmt=export.format,
            link_minutes=max(1, self.link_ttl_seconds // 60),
        )
        await uow.repository(MailRepository).stage(
            event_id=event.id, recipient=recipient, mail=mail
        )
        uow.after_commit(self._wake_mail)


def _count_ready(fmt: ExportFormat, waited_seconds: float) -> None:
    EXPORTS.labels(fmt.value, "ready").inc()
    EXPORT_READY.observe(max(waited_seconds, 0.0))


class ExportDeadline:
    """Fails exports still pending after `EXPORT_DEADLINE_SECONDS` (their command dead-lettered,
    or kept failing): the requester sees `failed` with the reason instead of waiting forever.
    Every replica runs it; one UPDATE settles each export once."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        deadline_seconds: float,
        every_seconds: float,
    ) -> None:
        self._sessions = sessions
        self.deadline = timedelta(seconds=deadline_seconds)
        self.loop = BackgroundLoop("export_deadline", self.step, every_seconds=every_seconds)

    async def step(self) -> bool:
        minutes = int(self.deadline.total_seconds() // 60)
        reason = f"not generated within {minutes} minutes; ask for a new export"
        async with UnitOfWork(self._sessions) as uow:
            failed = await uow.repository(ExportRepository).fail_overdue(
                deadline=self.deadline, reason=reason
            )
            await uow.commit()
        for export in failed:
            EXPORTS.labels(export.format, "failed").inc()
            log.error("export_failed", export_id=str(export.id), reason=reason)
        return False
