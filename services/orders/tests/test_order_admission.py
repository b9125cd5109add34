"""Admission control: new orders are refused (503 + Retry-After) while decisions lag."""

from __future__ import annotations

import pytest

from orders.admission import FLOOR, QUIET_SECONDS, OrderAdmission
from orders.exceptions import OrdersOverloadedError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_every_order_is_admitted_while_decisions_keep_within_the_target() -> None:
    gate = OrderAdmission(target_seconds=0.5, clock=Clock(), chance=lambda: 0.999)
    for _ in range(100):
        gate.decided(0.05)
        gate.admit()
    assert gate.share == 1.0


def test_late_decisions_shrink_the_admitted_share_and_refusals_say_when_to_retry() -> None:
    clock = Clock()
    gate = OrderAdmission(target_seconds=0.5, clock=clock, chance=lambda: 0.5)
    for _ in range(30):
        gate.decided(3.0)
    assert gate.share < 0.5
    with pytest.raises(OrdersOverloadedError) as refused:
        gate.admit()
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "1"


def test_the_share_never_falls_to_nothing_and_grows_back_with_timely_decisions() -> None:
    gate = OrderAdmission(target_seconds=0.5, clock=Clock(), chance=lambda: 0.0)
    for _ in range(1000):
        gate.decided(10.0)
    assert gate.share == FLOOR
    gate.admit()  # the lucky few still get in, and keep measuring the lag
    for _ in range(100):
        gate.decided(0.1)
    assert gate.share == 1.0


def test_without_decisions_for_a_while_every_order_is_admitted_again() -> None:
    clock = Clock()
    gate = OrderAdmission(target_seconds=0.5, clock=clock, chance=lambda: 0.99)
    for _ in range(50):
        gate.decided(5.0)
    with pytest.raises(OrdersOverloadedError):
        gate.admit()
    clock.now += QUIET_SECONDS + 0.1
    gate.admit()
    assert gate.share == 1.0


def test_a_target_of_zero_turns_the_gate_off() -> None:
    gate = OrderAdmission(target_seconds=0, clock=Clock(), chance=lambda: 0.99)
    for _ in range(50):
        gate.decided(5.0)
    gate.admit()
