"""The circuit breaker's state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from gateway.circuit_breaker import BreakerOpenError, CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transitions() -> list[tuple[CircuitState, CircuitState]]:
    return []


@pytest.fixture
def breaker(
    clock: FakeClock, transitions: list[tuple[CircuitState, CircuitState]]
) -> CircuitBreaker:
    return CircuitBreaker(
        "catalog",
        failure_threshold=3,
        open_seconds=10,
        half_open_max_calls=2,
        on_transition=lambda _, old, new: transitions.append((old, new)),
        clock=clock,
    )


def _state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.admit().failed()


def _open(breaker: CircuitBreaker) -> None:
    _fail(breaker, 3)
    assert _state(breaker) is CircuitState.OPEN


def test_opens_after_threshold_consecutive_failures(
    breaker: CircuitBreaker, transitions: list[tuple[CircuitState, CircuitState]]
) -> None:
    _fail(breaker, 2)
    assert _state(breaker) is CircuitState.CLOSED
    _fail(breaker, 1)
    assert _state(breaker) is CircuitState.OPEN
    assert transitions == [(CircuitState.CLOSED, CircuitState.OPEN)]


def test_a_success_resets_the_consecutive_failure_count(breaker: CircuitBreaker) -> None:
    _fail(breaker, 2)
    breaker.admit().succeeded()
    _fail(breaker, 2)
    assert _state(breaker) is CircuitState.CLOSED


def test_open_circuit_refuses_with_time_until_half_open(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.now += 4
    with pytest.raises(BreakerOpenError) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(6)


def test_after_open_period_only_the_trial_calls_go_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.now += 10
    first, second = breaker.admit(), breaker.admit()
    assert _state(breaker) is CircuitState.HALF_OPEN
    assert first.trial
    assert second.trial
    with pytest.raises(BreakerOpenError):
        breaker.admit()


def test_successful_trial_closes_the_circuit(
    breaker: CircuitBreaker,
    clock: FakeClock,
    transitions: list[tuple[CircuitState, CircuitState]],
) -> None:
    _open(breaker)
    clock.now += 10
    breaker.admit().succeeded()
    assert _state(breaker) is CircuitState.CLOSED
    assert transitions[-2:] == [
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    breaker.admit().succeeded()  # closed again: no trial limit


def test_failed_trial_reopens_for_a_whole_new_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _open(breaker)
    clock.now += 10
    breaker.admit().failed()
    assert _state(breaker) is CircuitState.OPEN
    clock.now += 9
    with pytest.raises(BreakerOpenError) as refused:
        breaker.admit()
    assert refused.value.retry_after == pytest.approx(1)


def test_a_released_trial_frees_its_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _open(breaker)
    clock.now += 10
    first = breaker.admit()
    breaker.admit()
    first.release()
    breaker.admit()
    assert _state(breaker) is CircuitState.HALF_OPEN


def test_outcomes_of_calls_started_before_a_transition_are_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    early, slow_success, slow_failure = breaker.admit(), breaker.admit(), breaker.admit()
    _open(breaker)
    early.succeeded()
    assert _state(breaker) is CircuitState.OPEN
    clock.now += 10
    trial = breaker.admit()
    slow_success.succeeded()  # not a trial: says nothing about the upstream now
    slow_failure.failed()
    assert _state(breaker) is CircuitState.HALF_OPEN
    trial.succeeded()
    assert _state(breaker) is CircuitState.CLOSED


def test_a_permit_counts_once(breaker: CircuitBreaker) -> None:
    permit = breaker.admit()
    for _ in range(5):
        permit.failed()
    assert _state(breaker) is CircuitState.CLOSED
