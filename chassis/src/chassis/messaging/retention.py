"""How long the outbox and the inbox keep their rows (purged by `chassis.retention.Purger`).

- Outbox: a row is needed until the relay published it; after that it is only a record of what
  was sent. Published rows go `OUTBOX_RETENTION_DAYS` after publication; an unpublished row is
  never purged, however old.
- Inbox: a row is what makes a second copy of a handled event change nothing, so it must outlive
  every copy that can still arrive: retries (`CONSUMER_RETRY_DELAYS_MS`, seconds), a copy left in
  a retry or dead-letter queue by a crash between publishing it and acking the original, which
  comes back when an operator replays the dead letters (`dlq replay`: days, for someone to fix
  the cause first), and a relay's re-send after a crash (minutes). `INBOX_RETENTION_DAYS`
  (default 7) bounds the dead-letter replay window: a copy of an event handled longer ago than
  that is handled again. A dead letter of an event that was never handled has no inbox row, so
  replaying it is safe at any age; since nobody can tell the two apart, `dlq replay` holds back
  letters older than that unless forced (`chassis.messaging.dlq`).

`service_purger` assembles a service's purger: its outbox and inbox (if it has them) and any
tables of its own, in bounded batches of `RETENTION_BATCH_SIZE`; the service starts it in its
lifespan next to the relay and stops it on the way out (`Purger.start`, `Purger.stop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox
from chassis.messaging.runtime import BrokerSettings
from chassis.retention import Expiry, Purger
from chassis.settings import WithBroker


def _needs_index(kind: str) -> str:
    return (
        f"the {kind} has no retention index: build it in a migration "
        f"(`create_{kind}_retention_index`), then declare it with `retention_index=True`"
    )


def outbox_expiry(outbox: Outbox, settings: WithBroker) -> Expiry:
    """Published rows older than `OUTBOX_RETENTION_DAYS` (since their publication)."""
    if not outbox.retention_index:
        raise ValueError(_needs_index("outbox"))
    published_at = outbox.table.c.published_at
    return Expiry(
        outbox.table,
        age=published_at,
        keep=timedelta(days=settings.outbox_retention_days),
        only=published_at.is_not(None),
    )


def inbox_expiry(inbox: Inbox, settings: WithBroker) -> Expiry:
    """Rows of events handled longer ago than `INBOX_RETENTION_DAYS`."""
    if not inbox.retention_index:
        raise ValueError(_needs_index("inbox"))
    return Expiry(
        inbox.table,
        age=inbox.table.c.processed_at,
        keep=timedelta(days=settings.inbox_retention_days),
    )


def service_purger(
    engine: AsyncEngine,
    settings: BrokerSettings,
    *,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    also: Sequence[Expiry] = (),
) -> Purger:
    """The purger of a service's expired rows: the tables in `also` (purged first), then the
    published outbox rows and the old inbox rows."""
    expiries = list(also)
    if outbox is not None:
        expiries.append(outbox_expiry(outbox, settings))
    if inbox is not None:
        expiries.append(inbox_expiry(inbox, settings))
    if not expiries:
        msg = "nothing to purge: give an outbox, an inbox or expiries of the service's own"
        raise ValueError(msg)
    return Purger(engine, expiries, batch_size=settings.retention_batch_size)
