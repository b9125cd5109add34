"""Retry delays: full jitter under an exponential bound, and what `Retry-After` asks for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from worker.backoff import MAX_RETRY_AFTER_SECONDS, full_jitter, retry_after_seconds


@pytest.mark.parametrize(("attempt", "bound"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0)])
def test_full_jitter_stays_under_the_exponential_bound_and_the_cap(
    attempt: int, bound: float
) -> None:
    delays = [full_jitter(attempt, base=1.0, cap=60.0) for _ in range(500)]
    assert all(0 <= d <= bound for d in delays)
    # Full jitter: spread over the whole range, not bunched at the bound.
    assert min(delays) < bound * 0.2
    assert max(delays) > bound * 0.8


def test_full_jitter_survives_absurd_attempt_numbers() -> None:
    assert 0 <= full_jitter(10_000, base=1.0, cap=300.0) <= 300.0


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 0 ") == 0.0


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(later, now=now) == pytest.approx(90.0)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(earlier, now=now) == 0.0


def test_absent_or_unreadable_retry_after_means_no_minimum() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None


def test_an_absurd_retry_after_is_capped() -> None:
    assert retry_after_seconds("999999999") == MAX_RETRY_AFTER_SECONDS
