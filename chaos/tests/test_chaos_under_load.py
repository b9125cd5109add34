"""`make chaos`, bounded: every fault once under steady order load, nothing lost or doubled.

A fleet of its own (database, Redis prefix, broker namespace), supervised as `make up` runs it.
It restarts the machine's PostgreSQL, Redis and RabbitMQ application, leaving each running as it
found it; it runs last (see `testpaths`) so the shared servers' restarts reach no other test.
"""

from __future__ import annotations

import pytest

from chaos.scenario import run

pytestmark = pytest.mark.e2e


async def test_every_fault_under_load_loses_duplicates_and_dead_letters_nothing() -> None:
    report = await run(orders_per_second=8, min_orders=0, rabbitmq_down_seconds=3)
    text = report.text()
    assert report.checks.passed, text
    assert [f.name for f in report.faults] == [
        *(f"kill -9 {s}" for s in ("auth", "catalog", "orders", "worker", "gateway")),
        *(f"SIGTERM {s}" for s in ("auth", "catalog", "orders", "worker", "gateway")),
        "broker connections dropped",
        "RabbitMQ stopped and started",
        "PostgreSQL restarted",
        "Redis restarted",
    ], text
    # Each kill found its service at work, and every fault was recovered from.
    assert all(f.detail.startswith("killed while") for f in report.faults[:5]), text
    assert all(f.recovery_seconds is not None for f in report.faults), text
    assert not any(f.detail.startswith("could not inject") for f in report.faults), text
    assert report.checks.accepted == report.checks.orders_sent > 0, text
