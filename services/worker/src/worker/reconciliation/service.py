"""Reconciliation runs: started by the schedule or by an admin, each one a
`reconciliation.run.v1` command handled by one worker replica.

The run row (`pending`) and its command commit together. The handler compares the two services
(`worker.reconciliation.compare`), writes the report to the bucket
(`reconciliations/<id>.json`: counts by kind and the first mismatches in detail), marks the run
`completed` and sets `reconciliation_mismatches{kind}`, which the `ReconciliationDrift` alert
watches. A run that keeps failing (orders or catalog down) is retried and then dead-lettered;
its row says `pending` until a replay completes it.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from chassis.messaging.handlers import PermanentError
from chassis.storage import ObjectStore
from chassis.tokens import Principal
from contracts.commands import ReconciliationTrigger, RunReconciliationV1
from contracts.events import CloudEvent
from worker.metrics import (
    RECONCILIATION_LAST_COMPLETED,
    RECONCILIATION_MISMATCHES,
    RECONCILIATION_RUNS,
)
from worker.models import Reconciliation, ReconciliationStatus, outbox
from worker.reconciliation.compare import Drift, Findings, compare
from worker.reconciliation.repository import ReconciliationRepository
from worker.reconciliation.schemas import ReconciliationOut
from worker.sources import OrdersSource, ReservationsSource, SourceRefusedError

log = get_logger(__name__)

SCHEDULE = "reconciliation"
OBJECT_PREFIX = "reconciliations/"
# Mismatches listed one by one in a report; beyond, only counted.
REPORT_DETAIL_LIMIT = 1000

for _kind in Drift:
    RECONCILIATION_MISMATCHES.labels(_kind.value)


async def start(
    uow: UnitOfWork,
    *,
    trigger: ReconciliationTrigger,
    settle_seconds: int,
    requested_by: uuid.UUID | None = None,
) -> Reconciliation:
    """Stage a run and its command in the caller's transaction."""
    run = Reconciliation(
        id=uuid.uuid4(),
        trigger=trigger.value,
        requested_by=requested_by,
        status=ReconciliationStatus.PENDING.value,
        created_at=datetime.now(UTC),
    )
    await uow.repository(ReconciliationRepository).add(run)
    command = RunReconciliationV1(
        reconciliation_id=run.id, trigger=trigger, settle_seconds=settle_seconds
    )
    await outbox.add(uow.session, command, subject=str(run.id))
    return run


async def start_now(
    uow: UnitOfWork, principal: Principal, *, settle_seconds: int
) -> Reconciliation:
    try:
        requester: uuid.UUID | None = uuid.UUID(principal.subject)
    except ValueError:
        requester = None
    async with uow:
        run = await start(
            uow,
            trigger=ReconciliationTrigger.ADMIN,
            settle_seconds=settle_seconds,
            requested_by=requester,
        )
        await uow.commit()
    log.info("reconciliation_requested", reconciliation_id=str(run.id))
    return run


class Reconciler:
    """The command's handler."""

    def __init__(
        self, *, orders: OrdersSource, reservations: ReservationsSource, store: ObjectStore
    ) -> None:
        self.orders = orders
        self.reservations = reservations
        self.store = store

    async def run(self, uow: UnitOfWork, event: CloudEvent, payload: RunReconciliationV1) -> None:
        runs = uow.repository(ReconciliationRepository)
        run = await runs.locked(payload.reconciliation_id)
        if run is None:
            msg = f"reconciliation {payload.reconciliation_id} does not exist"
            raise PermanentError(msg)
        if run.status != ReconciliationStatus.PENDING:
            return
        started = datetime.now(UTC)
        try:
            findings = await compare(
                self.orders.orders(order_by="id"),
                self.reservations.reservations(),
                settled_before=started - timedelta(seconds=payload.settle_seconds),
                keep=REPORT_DETAIL_LIMIT,
            )
            key = f"{OBJECT_PREFIX}{run.id}.json"
            report = _report(run, findings, started=started, settle=payload.settle_seconds)
            await self.store.put(key, report, content_type="application/json")
        except SourceRefusedError as exc:
            # Refused, not unavailable: another try would be refused the same way.
            await runs.fail(run, f"{exc.source} could not be read: {exc.detail}")
            uow.after_commit(lambda: RECONCILIATION_RUNS.labels("failed").inc())
            log.error("reconciliation_failed", reconciliation_id=str(run.id), reason=str(exc))
            return
        except Exception:
            RECONCILIATION_RUNS.labels("failed").inc()  # this attempt; the consumer retries it
            raise
        await runs.complete(
            run,
            orders_checked=findings.orders_checked,
            reservations_checked=findings.reservations_checked,
            by_kind=findings.by_kind,
            report_key=key,
        )
        uow.after_commit(lambda: _publish_metrics(findings))
        log.info(
            "reconciliation_completed",
            reconciliation_id=str(run.id),
            orders=findings.orders_checked,
            reservations=findings.reservations_checked,
            mismatches=findings.total,
        )


def _report(run: Reconciliation, findings: Findings, *, started: datetime, settle: int) -> bytes:
    document = {
        "reconciliation_id": str(run.id),
        "trigger": run.trigger,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "settle_seconds": settle,
        "orders_checked": findings.orders_checked,
        "reservations_checked": findings.reservations_checked,
        "mismatches": findings.total,
        "mismatches_by_kind": findings.by_kind,
        "detail_limit": findings.keep,
        "details": [mismatch.as_dict() for mismatch in findings.mismatches],
    }
    return json.dumps(document, indent=2).encode()


def _publish_metrics(findings: Findings) -> None:
    _show(findings.by_kind, time.time())
    RECONCILIATION_RUNS.labels("completed").inc()


def _show(by_kind: dict[str, int], completed_at: float) -> None:
    for kind, count in by_kind.items():
        RECONCILIATION_MISMATCHES.labels(kind).set(count)
    RECONCILIATION_LAST_COMPLETED.set(completed_at)


async def show_last_run(sessions: async_sessionmaker[AsyncSession]) -> None:
    """At start: the gauges of the fleet's last completed run (whichever replica ran it), so a
    restarted replica reports the drift and the age the fleet knows of, not zeros."""
    async with UnitOfWork(sessions) as uow:
        run = await uow.repository(ReconciliationRepository).last_completed()
    if run is not None and run.finished_at is not None:
        _show(run.mismatches_by_kind or {}, run.finished_at.timestamp())


class ReconciliationSchedule:
    """Sends `reconciliation.run.v1` every `every_seconds`, from one replica per period.

    Every replica looks every `check_seconds`; the one whose update of the schedule's row finds
    it due moves it a period on and stages the run and its command in the same transaction. That
    update is the period's lease: it cannot be held twice (the row's lock orders the replicas,
    and the later ones find it no longer due), and it cannot be lost between taking it and
    sending (both commit together, or neither does).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        every_seconds: float,
        check_seconds: float,
        settle_seconds: int,
        replica: str | None = None,
        name: str = SCHEDULE,
    ) -> None:
        self._sessions = sessions
        self.name = name
        self.every = timedelta(seconds=every_seconds)
        self.settle_seconds = settle_seconds
        self.replica = replica or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.loop = BackgroundLoop(
            "reconciliation_schedule", self.step, every_seconds=check_seconds
        )

    async def step(self) -> bool:
        async with UnitOfWork(self._sessions) as uow:
            if not await uow.repository(ReconciliationRepository).claim_period(
                self.name, every=self.every, replica=self.replica
            ):
                return False
            run = await start(
                uow, trigger=ReconciliationTrigger.SCHEDULE, settle_seconds=self.settle_seconds
            )
            await uow.commit()
        log.info("reconciliation_scheduled", reconciliation_id=str(run.id), replica=self.replica)
        return False


async def describe(
    run: Reconciliation, *, store: ObjectStore, ttl_seconds: int
) -> ReconciliationOut:
    url = None
    if run.report_key:
        url = await store.presigned_url(
            run.report_key, ttl_seconds=ttl_seconds, filename=f"reconciliation-{run.id}.json"
        )
    return ReconciliationOut(
        id=run.id,
        trigger=run.trigger,
        status=run.status,
        created_at=run.created_at,
        finished_at=run.finished_at,
        orders_checked=run.orders_checked,
        reservations_checked=run.reservations_checked,
        mismatches=run.mismatches,
        mismatches_by_kind=run.mismatches_by_kind,
        report_url=url,
    )
