"""The reconciliation's comparison: which disagreements between orders and catalog are drift,
and which are a saga still in flight."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from worker.reconciliation.compare import Drift, compare
from worker.sources import OrderLine, OrderRecord, ReservationRecord

T = TypeVar("T")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SETTLED = NOW - timedelta(minutes=1)
OLD = NOW - timedelta(hours=1)


async def _stream(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def _order(status: str, lines: dict[uuid.UUID, int], *, updated_at: datetime = OLD) -> OrderRecord:
    return OrderRecord(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status,
        total_cents=100,
        currency="EUR",
        reason=None,
        created_at=OLD,
        updated_at=updated_at,
        items=[
            OrderLine(product_id=product, quantity=quantity, unit_price_cents=10)
            for product, quantity in lines.items()
        ],
    )


def _held(
    order: OrderRecord,
    product: uuid.UUID,
    quantity: int,
    status: str = "reserved",
    *,
    created_at: datetime = OLD,
) -> ReservationRecord:
    return ReservationRecord(
        order_id=order.id,
        product_id=product,
        quantity=quantity,
        status=status,
        created_at=created_at,
        released_at=None if status == "reserved" else OLD,
    )


async def _drift(
    orders: list[OrderRecord], reservations: list[ReservationRecord]
) -> list[tuple[Drift, uuid.UUID]]:
    findings = await compare(
        _stream(sorted(orders, key=lambda o: o.id)),
        _stream(sorted(reservations, key=lambda r: (r.order_id, r.product_id))),
        settled_before=SETTLED,
    )
    assert findings.total == len(findings.mismatches)
    return [(mismatch.kind, mismatch.order_id) for mismatch in findings.mismatches]


async def test_orders_and_reservations_that_agree_are_no_drift() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    confirmed = _order("confirmed", {a: 2, b: 1})
    pending = _order("pending", {a: 1})
    cancelled = _order("cancelled", {b: 3})
    rejected = _order("rejected", {a: 5})  # never reserved
    reservations = [
        _held(confirmed, a, 2),
        _held(confirmed, b, 1),
        _held(pending, a, 1),
        _held(cancelled, b, 3, "released"),
    ]

    assert await _drift([confirmed, pending, cancelled, rejected], reservations) == []


async def test_a_confirmed_order_without_its_reservation_is_drift() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    confirmed = _order("confirmed", {a: 2, b: 1})

    drift = await _drift([confirmed], [_held(confirmed, a, 2)])

    assert drift == [(Drift.MISSING_RESERVATION, confirmed.id)]


async def test_quantities_that_disagree_are_drift() -> None:
    a = uuid.uuid4()
    confirmed = _order("confirmed", {a: 2})

    assert await _drift([confirmed], [_held(confirmed, a, 3)]) == [
        (Drift.QUANTITY_MISMATCH, confirmed.id)
    ]


async def test_stock_held_for_an_ended_order_and_released_for_an_open_one_is_drift() -> None:
    a = uuid.uuid4()
    cancelled = _order("cancelled", {a: 1})
    confirmed = _order("confirmed", {a: 1})
    extra = uuid.uuid4()

    drift = await _drift(
        [cancelled, confirmed],
        [_held(cancelled, a, 1), _held(confirmed, a, 1, "released"), _held(confirmed, extra, 4)],
    )

    assert sorted(drift) == sorted(
        [
            (Drift.HELD_FOR_ENDED_ORDER, cancelled.id),
            (Drift.RELEASED_FOR_OPEN_ORDER, confirmed.id),
            (Drift.UNORDERED_RESERVATION, confirmed.id),
        ]
    )


async def test_a_reservation_of_an_order_orders_does_not_know_is_drift() -> None:
    ghost = _order("confirmed", {uuid.uuid4(): 1})  # never given to the orders stream
    known = _order("confirmed", {uuid.uuid4(): 1})

    drift = await _drift(
        [known],
        [_held(ghost, ghost.items[0].product_id, 1), _held(known, known.items[0].product_id, 1)],
    )

    assert drift == [(Drift.RESERVATION_WITHOUT_ORDER, ghost.id)]


async def test_orders_and_reservations_still_in_flight_are_left_out() -> None:
    a = uuid.uuid4()
    just_confirmed = _order("confirmed", {a: 1}, updated_at=NOW)  # reservation on its way
    just_cancelled = _order("cancelled", {a: 1}, updated_at=NOW)  # release on its way
    fresh_orphan = _order("pending", {a: 1})

    findings = await compare(
        _stream(sorted([just_confirmed, just_cancelled], key=lambda o: o.id)),
        _stream(
            sorted(
                [_held(just_cancelled, a, 1), _held(fresh_orphan, a, 1, created_at=NOW)],
                key=lambda r: r.order_id,
            )
        ),
        settled_before=SETTLED,
    )

    assert (findings.total, findings.orders_checked) == (0, 0)
    assert findings.reservations_checked == 2


async def test_counts_go_on_past_the_detail_kept_for_the_report() -> None:
    orders = [_order("confirmed", {uuid.uuid4(): 1}) for _ in range(5)]

    findings = await compare(
        _stream(sorted(orders, key=lambda o: o.id)), _stream([]), settled_before=SETTLED, keep=2
    )

    assert findings.by_kind[Drift.MISSING_RESERVATION.value] == 5
    assert len(findings.mismatches) == 2
    assert findings.orders_checked == 5
