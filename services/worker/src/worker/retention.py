"""What the worker deletes once it has served its purpose: e-mails and webhook deliveries in a
final state older than `DELIVERY_RETENTION_DAYS`, inbox rows past `INBOX_RETENTION_DAYS`,
published outbox rows (the commands it sent) past `OUTBOX_RETENTION_DAYS`, finished exports past
`EXPORT_RETENTION_DAYS` and finished reconciliation runs past `RECONCILIATION_RETENTION_DAYS`
with their files in the bucket, and audit records past `AUDIT_RETENTION_DAYS`.

Pending rows (due, waiting for a retry, or leased to a sender right now) are never deleted,
whatever their age: only the statuses listed as final below are. Each replica runs the purge as
one more background loop (`Purger.loop`); batches are claimed with `FOR UPDATE SKIP LOCKED`, so
replicas share the work (see `chassis.retention`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.audit import audit_expiry
from chassis.messaging.retention import service_purger
from chassis.retention import Expiry, Purger
from chassis.storage import ObjectStore
from worker.models import (
    DeliveryStatus,
    Export,
    ExportStatus,
    Notification,
    NotificationStatus,
    Reconciliation,
    ReconciliationStatus,
    WebhookDelivery,
    audit,
    inbox,
    outbox,
)
from worker.settings import WorkerSettings

SETTLED_MAILS = (NotificationStatus.SENT.value, NotificationStatus.FAILED.value)
SETTLED_DELIVERIES = (DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value)
FINISHED_EXPORTS = (ExportStatus.READY.value, ExportStatus.FAILED.value)
FINISHED_RUNS = (ReconciliationStatus.COMPLETED.value, ReconciliationStatus.FAILED.value)


def delivery_expiries(settings: WorkerSettings) -> list[Expiry]:
    """Settled e-mails and webhook deliveries past `DELIVERY_RETENTION_DAYS`."""
    keep = timedelta(days=settings.delivery_retention_days)
    return [
        Expiry(
            cast(Table, Notification.__table__),
            age=Notification.created_at,
            keep=keep,
            only=Notification.status.in_(SETTLED_MAILS),
        ),
        Expiry(
            cast(Table, WebhookDelivery.__table__),
            age=WebhookDelivery.created_at,
            keep=keep,
            only=WebhookDelivery.status.in_(SETTLED_DELIVERIES),
        ),
    ]


def file_expiries(settings: WorkerSettings, store: ObjectStore | None) -> list[Expiry]:
    """Finished exports past `EXPORT_RETENTION_DAYS` and finished reconciliation runs past
    `RECONCILIATION_RETENTION_DAYS`, each with its file in the bucket (removed in the batch's
    transaction: a row goes only once its file is gone). Without a store (tests of the other
    purges), none."""
    if store is None:
        return []
    return [
        Expiry(
            cast(Table, Export.__table__),
            age=Export.created_at,
            keep=timedelta(days=settings.export_retention_days),
            only=Export.status.in_(FINISHED_EXPORTS),
            returning=Export.object_key,
            also_delete=store.delete,
        ),
        Expiry(
            cast(Table, Reconciliation.__table__),
            age=Reconciliation.created_at,
            keep=timedelta(days=settings.reconciliation_retention_days),
            only=Reconciliation.status.in_(FINISHED_RUNS),
            returning=Reconciliation.report_key,
            also_delete=store.delete,
        ),
    ]


def purger(
    engine: AsyncEngine, settings: WorkerSettings, store: ObjectStore | None = None
) -> Purger:
    also = [
        *delivery_expiries(settings),
        *file_expiries(settings, store),
        audit_expiry(audit, settings),
    ]
    return service_purger(engine, settings, outbox=outbox, inbox=inbox, also=also)
