"""Reconciliation runs in the worker: one per period whatever the number of replicas, started by
an admin too, drift reported in the bucket, in the API and in the metrics a restarted replica
still shows. (What counts as drift: test_reconciliation_compare.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from worker_test_support import WorkerDb, sample

from chassis.db import session_factory
from fleetctl.testing import assert_problem, eventually
from worker import main
from worker.metrics import RECONCILIATION_MISMATCHES
from worker.models import Reconciliation, Schedule, outbox
from worker.reconciliation.service import ReconciliationSchedule
from worker.settings import WorkerSettings
from worker.sources import OrderLine, OrderRecord, ReservationRecord

Customer = Any  # conftest's Customer
StartWorker = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
RUNS = "/v1/admin/reconciliations"
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)


async def _stream(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class StandIns:
    """Orders and catalog as the reconciliation reads them (sorted by order id)."""

    def __init__(self, orders: list[OrderRecord], reservations: list[ReservationRecord]) -> None:
        self._orders = sorted(orders, key=lambda order: order.id)
        self._reservations = sorted(reservations, key=lambda r: (r.order_id, r.product_id))

    def orders(self, **_: Any) -> AsyncIterator[OrderRecord]:
        return _stream(self._orders)

    def reservations(self, **_: Any) -> AsyncIterator[ReservationRecord]:
        return _stream(self._reservations)


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> Callable[[StandIns], None]:
    def use(sources: StandIns) -> None:
        @asynccontextmanager
        async def opened(_: WorkerSettings) -> AsyncIterator[tuple[Any, Any]]:
            yield sources, sources

        monkeypatch.setattr(main, "sources", opened)

    return use


def _confirmed_without_its_reservation() -> tuple[OrderRecord, list[ReservationRecord]]:
    order = OrderRecord(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status="confirmed",
        total_cents=500,
        currency="EUR",
        reason=None,
        created_at=LONG_AGO,
        updated_at=LONG_AGO,
        items=[OrderLine(product_id=uuid.uuid4(), quantity=2, unit_price_cents=250)],
    )
    return order, []


async def _completed(http: httpx.AsyncClient, admin: Customer, run_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def completed() -> bool:
        runs = (await http.get(RUNS, headers=admin.headers)).json()["items"]
        seen.update(next((run for run in runs if run["id"] == run_id), {}))
        return seen.get("status") == "completed"

    await eventually(completed, timeout=20)
    return seen


async def test_an_admins_run_reports_drift_in_the_bucket_the_api_and_the_metrics(
    start_worker: StartWorker,
    stand_ins: Callable[[StandIns], None],
    new_customer: Callable[..., Customer],
) -> None:
    admin, customer = new_customer(roles=("admin",)), new_customer()
    order, reservations = _confirmed_without_its_reservation()
    stand_ins(StandIns([order], reservations))
    async with start_worker() as http:
        refused = await http.post(RUNS, headers=customer.headers)
        hidden = await http.get(RUNS, headers=customer.headers)
        started = await http.post(RUNS, headers=admin.headers)
        assert started.status_code == 202, started.text
        assert started.json()["status"] == "pending"
        run = await _completed(http, admin, started.json()["id"])
        async with httpx.AsyncClient() as anyone:
            report = (await anyone.get(run["report_url"])).json()

    assert_problem(refused, 403)
    assert_problem(hidden, 403)
    assert run["mismatches"] == 1
    assert run["mismatches_by_kind"]["missing_reservation"] == 1
    assert (run["orders_checked"], run["trigger"]) == (1, "admin")
    assert report["details"] == [
        {
            "kind": "missing_reservation",
            "order_id": str(order.id),
            "product_id": str(order.items[0].product_id),
            "detail": "no reservation",
        }
    ]
    assert sample("reconciliation_mismatches", {"kind": "missing_reservation"}) == 1


async def test_a_restarted_replica_shows_the_drift_of_the_last_completed_run(
    start_worker: StartWorker,
    stand_ins: Callable[[StandIns], None],
    new_customer: Callable[..., Customer],
) -> None:
    admin = new_customer(roles=("admin",))
    order, reservations = _confirmed_without_its_reservation()
    stand_ins(StandIns([order], reservations))
    async with start_worker() as http:
        started = await http.post(RUNS, headers=admin.headers)
        await _completed(http, admin, started.json()["id"])
    RECONCILIATION_MISMATCHES.labels("missing_reservation").set(0)  # as in a new process

    async with start_worker():
        shown = sample("reconciliation_mismatches", {"kind": "missing_reservation"})

    assert shown == 1


async def _scheduled_runs(db: WorkerDb, since: datetime) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(Reconciliation)
        .where(Reconciliation.trigger == "schedule")
        .where(Reconciliation.created_at >= since)
    )
    async with db.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_replicas_looking_at_once_send_one_run_per_period(db: WorkerDb) -> None:
    name = f"test-{uuid.uuid4().hex[:12]}"
    sessions = session_factory(db.engine)
    replicas = [
        ReconciliationSchedule(
            sessions,
            every_seconds=3600,
            check_seconds=1,
            settle_seconds=0,
            replica=f"replica-{n}",
            name=name,
        )
        for n in range(3)
    ]
    async with db.engine.connect() as conn:
        since = (await conn.execute(sa.select(sa.func.now()))).scalar_one()

    await asyncio.gather(*(replica.step() for replica in replicas))
    await asyncio.gather(*(replica.step() for replica in replicas))
    assert await _scheduled_runs(db, since) == 1

    due_now = sa.update(Schedule).where(Schedule.name == name)
    async with db.engine.begin() as conn:
        await conn.execute(due_now.values(next_run_at=sa.func.now() - timedelta(seconds=1)))
    await asyncio.gather(*(replica.step() for replica in replicas))

    assert await _scheduled_runs(db, since) == 2
    await _forget_runs_since(db, since)


async def _forget_runs_since(db: WorkerDb, since: datetime) -> None:
    """The runs this test staged, and their commands: no later test's worker is to run them."""
    runs = sa.select(sa.cast(Reconciliation.id, sa.Text)).where(
        Reconciliation.trigger == "schedule", Reconciliation.created_at >= since
    )
    async with db.engine.begin() as conn:
        await conn.execute(sa.delete(outbox.table).where(outbox.table.c.subject.in_(runs)))
        await conn.execute(
            sa.delete(Reconciliation).where(
                Reconciliation.id.in_(
                    sa.select(Reconciliation.id).where(
                        Reconciliation.trigger == "schedule", Reconciliation.created_at >= since
                    )
                )
            )
        )
