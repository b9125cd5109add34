"""An order's life is one transition table: what may follow each status, and nothing else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from orders.models import OrderStatus
from orders.repository import IllegalTransitionError, Order, OrderRepository

PENDING, CONFIRMED, REJECTED, CANCELLED = OrderStatus


def order(status: OrderStatus) -> Order:
    now = datetime.now(UTC)
    return Order(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        status=status.value,
        total_cents=100,
        currency="EUR",
        reason=None,
        created_at=now,
        updated_at=now,
        items=[],
    )


@pytest.mark.parametrize(
    ("start", "allowed"),
    [
        (PENDING, {CONFIRMED, REJECTED, CANCELLED}),
        (CONFIRMED, {CANCELLED}),
        (REJECTED, set()),
        (CANCELLED, set()),
    ],
)
def test_each_status_may_become_only_what_the_saga_allows(
    start: OrderStatus, allowed: set[OrderStatus]
) -> None:
    assert {status for status in OrderStatus if order(start).can_become(status)} == allowed


def test_rejected_and_cancelled_orders_are_over() -> None:
    assert [status for status in OrderStatus if order(status).is_over] == [REJECTED, CANCELLED]


async def test_the_repository_refuses_a_change_the_life_does_not_allow() -> None:
    class NoDatabase:
        """A session the refusal must never reach."""

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(name)

    rejected = order(REJECTED)
    with pytest.raises(IllegalTransitionError, match="from rejected to confirmed"):
        await OrderRepository(NoDatabase()).set_status(  # type: ignore[arg-type]
            rejected, CONFIRMED, None
        )
    assert rejected.status == "rejected"
