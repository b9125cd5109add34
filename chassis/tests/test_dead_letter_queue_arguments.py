"""The dead-letter queue keeps letters however often `dlq list` looks: on RabbitMQ 3 and 4."""

from __future__ import annotations

import pytest

from chassis.messaging.topology import dlq_arguments

QUORUM = {"x-queue-type": "quorum"}


@pytest.mark.parametrize("version", ["4.0.0", "4.1.4", "4.2.0-rc.1", "10.0.0"])
def test_on_rabbitmq_4_the_dlq_has_no_delivery_limit(version: str) -> None:
    # 4.x would otherwise drop a letter after 20 returns (it has no dead-letter exchange).
    assert dlq_arguments(QUORUM, version) == {**QUORUM, "x-delivery-limit": -1}


@pytest.mark.parametrize("version", ["3.10.8", "3.13.7", "", "unknown"])
def test_before_rabbitmq_4_the_arguments_are_left_alone(version: str) -> None:
    # 3.x refuses -1 and has no default limit; an unreadable version is treated the same.
    assert dlq_arguments(QUORUM, version) == QUORUM
