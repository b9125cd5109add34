"""Use cases of the export API: ask for an export, read one.

Asking commits the export (`pending`) and its `export.generate.v1` command in one transaction:
the command is sent if and only if the export exists. Reading names the caller as the requester:
another user's export is not found, never forbidden. A ready export's file is private in the
bucket; each read signs a fresh short-lived URL of it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.security import ADMIN_ROLE
from chassis.storage import ObjectStore
from chassis.tokens import Principal
from contracts.commands import ExportFormat, GenerateExportV1
from worker.exports.exceptions import ExportNotFoundError, ExportScopeForbiddenError
from worker.exports.repository import ExportRepository
from worker.exports.schemas import ExportIn, ExportOut, ExportScope
from worker.models import Export, ExportStatus, outbox

log = get_logger(__name__)


def requester_of(principal: Principal) -> uuid.UUID:
    """The caller's user id; a token whose subject is not a user's has no exports."""
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        raise ExportNotFoundError("Only user accounts have exports.") from None


async def request_export(
    *, uow: UnitOfWork, principal: Principal, export_in: ExportIn
) -> ExportOut:
    requester = requester_of(principal)
    if export_in.scope is ExportScope.ALL and not principal.has_role(ADMIN_ROLE):
        raise ExportScopeForbiddenError("Ask for scope `mine`, or use an admin's token.")
    export = Export(
        id=uuid.uuid4(),
        requested_by=requester,
        user_id=None if export_in.scope is ExportScope.ALL else requester,
        format=export_in.format.value,
        created_since=export_in.created_since,
        created_until=export_in.created_until,
        status=ExportStatus.PENDING.value,
        created_at=datetime.now(UTC),
    )
    command = GenerateExportV1(
        export_id=export.id,
        requested_by=requester,
        user_id=export.user_id,
        format=export_in.format,
        created_since=export_in.created_since,
        created_until=export_in.created_until,
    )
    async with uow:
        await uow.repository(ExportRepository).add(export)
        await outbox.add(uow.session, command, subject=str(export.id))
        await uow.commit()
    log.info("export_requested", export_id=str(export.id), scope=export_in.scope.value)
    return await describe(export, store=None, ttl_seconds=0)


async def read_export(
    *,
    uow: UnitOfWork,
    principal: Principal,
    export_id: uuid.UUID,
    store: ObjectStore,
    ttl_seconds: int,
) -> ExportOut:
    requester = requester_of(principal)
    async with uow:
        export = await uow.repository(ExportRepository).requested_by(requester, export_id)
    if export is None:
        raise ExportNotFoundError(f"No export {export_id} of yours.")
    return await describe(export, store=store, ttl_seconds=ttl_seconds)


def file_name(export: Export) -> str:
    return f"fleet-orders-{export.id}.{export.format}"


async def describe(export: Export, *, store: ObjectStore | None, ttl_seconds: int) -> ExportOut:
    url = expires = None
    if store is not None and export.status == ExportStatus.READY and export.object_key:
        url = await store.presigned_url(
            export.object_key, ttl_seconds=ttl_seconds, filename=file_name(export)
        )
        expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    return ExportOut(
        id=export.id,
        status=export.status,
        format=ExportFormat(export.format),
        scope=ExportScope.ALL if export.user_id is None else ExportScope.MINE,
        created_since=export.created_since,
        created_until=export.created_until,
        created_at=export.created_at,
        finished_at=export.finished_at,
        order_count=export.order_count,
        size_bytes=export.size_bytes,
        reason=export.reason,
        download_url=url,
        download_expires_at=expires,
    )
