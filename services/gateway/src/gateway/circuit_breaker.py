"""A circuit breaker: stop calling an upstream that keeps failing, and probe it before trusting it.

closed ──(N consecutive failures)──▶ open ──(open period over)──▶ half-open
  ▲                                   ▲                               │
  └──────────(a trial succeeds)───────┼───────────────────────────────┤
                                      └───────(a trial fails)─────────┘

While open, `admit` refuses at once; half-open lets a bounded number of trial calls through.
Each call holds a `Permit` and settles it with its outcome. A permit remembers the state it was
issued in, so a slow call that started before a transition cannot move the new state (a success
from before the circuit opened does not close it). All of it runs on the event loop without
awaiting, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    """Values are what the `gateway_circuit_state` gauge reports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class BreakerOpenError(Exception):
    """The circuit refused the call; a trial may go through in `retry_after` seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is open")
        self.name = name
        self.retry_after = retry_after


Transition = Callable[[str, CircuitState, CircuitState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        open_seconds: float,
        half_open_max_calls: int,
        on_transition: Transition | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._open_seconds = open_seconds
        self._max_trials = half_open_max_calls
        self._on_transition = on_transition
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._generation = 0  # bumped on every transition; permits of older ones are ignored
        self._failures = 0
        self._trials = 0
        self._opened_at = 0.0

    @property
    def state(self) -> CircuitState:
        return self._state

    def admit(self) -> Permit:
        """A permit to call the upstream, or `BreakerOpenError` without calling it."""
        if self._state is CircuitState.OPEN:
            remaining = self._opened_at + self._open_seconds - self._clock()
            if remaining > 0:
                raise BreakerOpenError(self.name, remaining)
            self._move_to(CircuitState.HALF_OPEN)
        if self._state is CircuitState.HALF_OPEN:
            if self._trials >= self._max_trials:
                # The trials decide soon; until then this is as good as open.
                raise BreakerOpenError(self.name, 1.0)
            self._trials += 1
            return Permit(self, self._generation, trial=True)
        return Permit(self, self._generation, trial=False)

    def _succeeded(self, permit: Permit) -> None:
        if permit.generation != self._generation:
            return
        if self._state is CircuitState.HALF_OPEN:
            self._move_to(CircuitState.CLOSED)
        else:
            self._failures = 0

    def _failed(self, permit: Permit) -> None:
        if permit.generation != self._generation:
            return
        if self._state is CircuitState.HALF_OPEN:
            self._move_to(CircuitState.OPEN)
            return
        self._failures += 1
        if self._failures >= self._threshold:
            self._move_to(CircuitState.OPEN)

    def _released(self, permit: Permit) -> None:
        if permit.trial and permit.generation == self._generation:
            self._trials -= 1

    def _move_to(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._failures = 0
        self._trials = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if self._on_transition is not None:
            self._on_transition(self.name, old, new)


class Permit:
    """One admitted call. Settle it once: `succeeded`, `failed`, or `release` for a call that
    ended without a verdict (cancelled); later settlements are ignored."""

    __slots__ = ("_breaker", "_settled", "generation", "trial")

    def __init__(self, breaker: CircuitBreaker, generation: int, *, trial: bool) -> None:
        self._breaker = breaker
        self._settled = False
        self.generation = generation
        self.trial = trial

    def succeeded(self) -> None:
        if self._settle():
            self._breaker._succeeded(self)

    def failed(self) -> None:
        if self._settle():
            self._breaker._failed(self)

    def release(self) -> None:
        if self._settle():
            self._breaker._released(self)

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        return True
