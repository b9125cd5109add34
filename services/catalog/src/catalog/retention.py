"""What catalog deletes once it has served its purpose: published outbox rows, handled-event
inbox rows and audit records past their retention (it has no expiring tables of its own).

Each replica runs the purge for as long as it serves (`Purger.loop`); batches are claimed with
`FOR UPDATE SKIP LOCKED`, so replicas share the work (see `chassis.retention`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from catalog.models import audit, inbox, outbox
from catalog.settings import CatalogSettings
from chassis.audit import audit_expiry
from chassis.messaging.retention import service_purger
from chassis.retention import Purger


def purger(engine: AsyncEngine, settings: CatalogSettings) -> Purger:
    return service_purger(
        engine, settings, outbox=outbox, inbox=inbox, also=[audit_expiry(audit, settings)]
    )
