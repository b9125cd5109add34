"""Admission control of new orders, tied to the decision SLO (99 % decided within 2 s).

Placing an order is quick; deciding it (catalog reserves, answers, orders confirms) happens
afterwards, through the outbox and the queues. A fleet past its capacity would accept every
order and decide them later and later: the backlog grows out of sight while every POST still
says 202 (and the confirmation timeout ends up rejecting orders it accepted). This gate watches
how long recent orders took from placed to decided (the consumer measures it, both timestamps
the database's) and, while that lag is past the target, admits only a shrinking share of new
orders; the others are refused at once with 503 and `Retry-After`, before any work is done.

The share shrinks multiplicatively with each late decision and grows back additively with each
timely one (AIMD, as TCP does with its window), so the admitted rate settles where decisions
stay within the target. With no decision for a while (idle, or nothing admitted) it is whole
again: a gate that refused everything would never see the lag fall.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from orders.exceptions import OrdersOverloadedError
from orders.metrics import ADMISSION_REFUSED, ADMITTED_SHARE

DECREASE = 0.95  # per decision later than the target
INCREASE = 0.02  # per decision within it
FLOOR = 0.05  # never refuse everything: admitted orders keep measuring the lag
QUIET_SECONDS = 1.0  # no decision for this long: admit everything again
RETRY_AFTER_SECONDS = 1


class OrderAdmission:
    def __init__(
        self,
        *,
        target_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        chance: Callable[[], float] = random.random,
    ) -> None:
        """`target_seconds` 0 turns the gate off (every order is admitted)."""
        self.target_seconds = target_seconds
        self._clock = clock
        self._chance = chance
        self._share = 1.0
        self._last_decision = float("-inf")
        ADMITTED_SHARE.set(1.0)

    @property
    def share(self) -> float:
        if self._clock() - self._last_decision > QUIET_SECONDS:
            self._share = 1.0
        return self._share

    def decided(self, lag_seconds: float) -> None:
        """An order was decided `lag_seconds` after it was placed."""
        self._last_decision = self._clock()
        if lag_seconds > self.target_seconds:
            self._share = max(FLOOR, self._share * DECREASE)
        else:
            self._share = min(1.0, self._share + INCREASE)
        ADMITTED_SHARE.set(self._share)

    def admit(self) -> None:
        """Raise OrdersOverloadedError for a new order the gate does not admit."""
        if self.target_seconds <= 0:
            return
        share = self.share
        if share < 1.0 and self._chance() >= share:
            ADMISSION_REFUSED.inc()
            raise OrdersOverloadedError(
                "Orders are being decided more slowly than promised; retry shortly.",
                retry_after=RETRY_AFTER_SECONDS,
            )
