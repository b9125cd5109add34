"""Adaptive throttling: refuse locally the share of requests an upstream is refusing anyway."""

from __future__ import annotations

from gateway.throttle import AdaptiveThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(throttle: AdaptiveThrottle, rounds: int, *, offered: int, capacity: int) -> list[int]:
    """Each round, `offered` requests arrive; the upstream accepts the first `capacity` the
    gateway forwards and sheds the others. Returns how many were forwarded in each round."""
    forwarded_per_round = []
    for _ in range(rounds):
        forwarded = 0
        for _ in range(offered):
            if throttle.allow():
                forwarded += 1
                if forwarded <= capacity:
                    throttle.accepted()
                else:
                    throttle.shed()
        forwarded_per_round.append(forwarded)
    return forwarded_per_round


def test_nothing_is_refused_while_the_upstream_accepts_everything() -> None:
    throttle = AdaptiveThrottle(ratio=2, window_seconds=10, clock=Clock(), chance=lambda: 0.0)
    assert _run(throttle, 10, offered=100, capacity=100) == [100] * 10


def test_an_upstream_at_a_quarter_of_the_load_gets_about_twice_its_capacity_forwarded() -> None:
    chances = iter([(n * 0.6180339887) % 1 for n in range(1, 100_000)])  # evenly spread
    throttle = AdaptiveThrottle(
        ratio=2, window_seconds=10, clock=Clock(), chance=lambda: next(chances)
    )
    forwarded = _run(throttle, 40, offered=100, capacity=25)
    # Once settled, about ratio x capacity go through; the gateway refuses the rest itself.
    assert all(40 <= n <= 60 for n in forwarded[10:]), forwarded


def test_the_window_forgets_an_old_overload() -> None:
    clock = Clock()
    throttle = AdaptiveThrottle(ratio=2, window_seconds=10, clock=clock, chance=lambda: 0.5)
    for _ in range(100):
        throttle.shed()  # nothing accepted: an overloaded upstream
    assert not throttle.allow()
    clock.now += 11
    assert throttle.allow()


def test_requests_still_in_flight_are_never_held_against_the_upstream() -> None:
    throttle = AdaptiveThrottle(ratio=2, window_seconds=10, clock=Clock(), chance=lambda: 0.0)
    assert all(throttle.allow() for _ in range(64))  # a burst, no answer back yet


def test_a_ratio_of_zero_turns_it_off() -> None:
    throttle = AdaptiveThrottle(ratio=0, window_seconds=10, clock=Clock(), chance=lambda: 0.0)
    assert all(throttle.allow() for _ in range(100))
