"""The comparison itself: a merge join of orders (by id) and catalog's reservations (by order id,
then product id), both streamed in keyset pages, so a run holds one order and its reservations at
a time whatever the number of orders.

What must hold for every order that is settled (not changed for `settle` before the run: one
that changed since may be between two steps of its saga):

- a `confirmed` order has a `reserved` reservation for each of its lines, of the same quantity,
  and none for products it does not order;
- a reservation still `reserved` belongs to an order that is `confirmed` or `pending` (stock held
  for a rejected or cancelled order is stock no one can buy);
- a `released` reservation belongs to an order that ended (`cancelled` or `rejected`): a release
  for an order still open gave its stock back while the order stands. Catalog records a line's
  release once (the reservation is its key), so a second release of it cannot hide there;
- every reservation belongs to an order orders knows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from worker.sources import OrderRecord, ReservationRecord

OPEN = frozenset({"confirmed", "pending"})
ENDED = frozenset({"cancelled", "rejected"})
RESERVED, RELEASED = "reserved", "released"


class Drift(StrEnum):
    MISSING_RESERVATION = "missing_reservation"
    """A confirmed order's line has no reservation in catalog."""
    QUANTITY_MISMATCH = "quantity_mismatch"
    """A confirmed order's line and its reservation disagree on the quantity."""
    UNORDERED_RESERVATION = "unordered_reservation"
    """A reservation for a product the order does not have."""
    HELD_FOR_ENDED_ORDER = "held_for_ended_order"
    """Stock still reserved for an order that was rejected or cancelled."""
    RELEASED_FOR_OPEN_ORDER = "released_for_open_order"
    """Stock released while its order is still confirmed or pending."""
    RESERVATION_WITHOUT_ORDER = "reservation_without_order"
    """A reservation for an order orders does not know."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: Drift
    order_id: uuid.UUID
    product_id: uuid.UUID | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "order_id": str(self.order_id),
            "product_id": None if self.product_id is None else str(self.product_id),
            "detail": self.detail,
        }


@dataclass
class Findings:
    """What a run found: counts of everything, the first `keep` mismatches in detail."""

    keep: int
    orders_checked: int = 0
    reservations_checked: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: {kind.value: 0 for kind in Drift})
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def add(self, mismatch: Mismatch) -> None:
        self.by_kind[mismatch.kind.value] += 1
        if len(self.mismatches) < self.keep:
            self.mismatches.append(mismatch)


async def _groups(
    reservations: AsyncIterable[ReservationRecord],
) -> AsyncIterator[list[ReservationRecord]]:
    """Consecutive reservations of one order (the stream is sorted by order id)."""
    group: list[ReservationRecord] = []
    async for reservation in reservations:
        if group and reservation.order_id != group[0].order_id:
            yield group
            group = []
        group.append(reservation)
    if group:
        yield group


async def compare(
    orders: AsyncIterable[OrderRecord],
    reservations: AsyncIterable[ReservationRecord],
    *,
    settled_before: datetime,
    keep: int = 1000,
) -> Findings:
    """Walk both streams once, in order id order; see the module's docstring for the rules."""
    findings = Findings(keep=keep)
    order_stream = aiter(orders)
    group_stream = aiter(_groups(reservations))
    order = await anext(order_stream, None)
    group = await anext(group_stream, None)
    while order is not None or group is not None:
        if group is None or (order is not None and order.id < group[0].order_id):
            assert order is not None
            _check(findings, order, [], settled_before)
            order = await anext(order_stream, None)
        elif order is None or group[0].order_id < order.id:
            _orphans(findings, group, settled_before)
            group = await anext(group_stream, None)
        else:
            _check(findings, order, group, settled_before)
            order = await anext(order_stream, None)
            group = await anext(group_stream, None)
    return findings


def _check(
    findings: Findings,
    order: OrderRecord,
    held: list[ReservationRecord],
    settled_before: datetime,
) -> None:
    findings.reservations_checked += len(held)
    if order.updated_at >= settled_before or any(r.created_at >= settled_before for r in held):
        return  # in flight: its saga may be between two steps
    findings.orders_checked += 1
    by_product = {reservation.product_id: reservation for reservation in held}
    ordered = {line.product_id: line.quantity for line in order.items}
    if order.status == "confirmed":
        for product_id, quantity in ordered.items():
            reservation = by_product.get(product_id)
            if reservation is None:
                findings.add(
                    Mismatch(Drift.MISSING_RESERVATION, order.id, product_id, "no reservation")
                )
            elif reservation.quantity != quantity:
                detail = f"ordered {quantity}, reserved {reservation.quantity}"
                findings.add(Mismatch(Drift.QUANTITY_MISMATCH, order.id, product_id, detail))
    for reservation in held:
        if reservation.product_id not in ordered:
            detail = f"{reservation.status} {reservation.quantity}, not in the order"
            findings.add(
                Mismatch(Drift.UNORDERED_RESERVATION, order.id, reservation.product_id, detail)
            )
        elif reservation.status == RESERVED and order.status in ENDED:
            detail = f"{reservation.quantity} still reserved, order {order.status}"
            findings.add(
                Mismatch(Drift.HELD_FOR_ENDED_ORDER, order.id, reservation.product_id, detail)
            )
        elif reservation.status == RELEASED and order.status in OPEN:
            detail = f"{reservation.quantity} released, order {order.status}"
            findings.add(
                Mismatch(Drift.RELEASED_FOR_OPEN_ORDER, order.id, reservation.product_id, detail)
            )


def _orphans(findings: Findings, held: list[ReservationRecord], settled_before: datetime) -> None:
    findings.reservations_checked += len(held)
    for reservation in held:
        if reservation.created_at >= settled_before:
            continue  # its order may have been created after the orders stream passed it
        detail = f"{reservation.status} {reservation.quantity}, order unknown to orders"
        findings.add(
            Mismatch(
                Drift.RESERVATION_WITHOUT_ORDER,
                reservation.order_id,
                reservation.product_id,
                detail,
            )
        )
