"""What auth deletes once it has served its purpose: published outbox rows and audit records
past their retention (it consumes no events, so it has no inbox; users and refresh tokens are its
domain).

Each replica runs the purge for as long as it serves (`Purger.loop`); batches are claimed with
`FOR UPDATE SKIP LOCKED`, so replicas share the work (see `chassis.retention`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from auth.models import audit, outbox
from auth.settings import AuthSettings
from chassis.audit import audit_expiry
from chassis.messaging.retention import service_purger
from chassis.retention import Purger


def purger(engine: AsyncEngine, settings: AuthSettings) -> Purger:
    return service_purger(engine, settings, outbox=outbox, also=[audit_expiry(audit, settings)])
