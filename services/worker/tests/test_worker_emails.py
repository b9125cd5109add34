"""E-mails: one per event over real SMTP, whatever the broker redelivers and across restarts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from worker_sinks import Mailbox, closed_port_url
from worker_test_support import Bus, WorkerDb, event_of, sample

from contracts.events import (
    CancellationReason,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    RejectionReason,
)
from fleetctl.testing import eventually

Customer = Any  # conftest's Customer
DUPLICATE_CONFIRMED = {"event_type": "order.confirmed.v1", "outcome": "duplicate"}


def _confirmed(someone: Customer, total_cents: int = 1250) -> Any:
    return event_of(
        OrderConfirmedV1(
            order_id=uuid.uuid4(), user_id=someone.id, total_cents=total_cents, currency="EUR"
        )
    )


def _body(mail: Any) -> str:
    return bytes(mail.get_payload(decode=True)).decode()


@pytest.mark.usefixtures("client")
async def test_a_registered_user_gets_a_welcome_mail(
    customer: Customer, bus: Bus, mailbox: Mailbox
) -> None:
    event_id = await bus.register(customer)

    await eventually(lambda: len(mailbox.about(event_id)) == 1)
    mail = mailbox.about(event_id)[0]
    assert mail["To"] == customer.email
    assert mail["From"] == "Fleet <no-reply@fleet.local>"
    assert mail["Subject"] == "Welcome to Fleet"
    # The Message-ID is derived from the event: a resend after a crash is recognisable.
    assert mail["Message-ID"] == f"<{event_id}@fleet.local>"


@pytest.mark.usefixtures("client")
async def test_a_confirmed_order_is_mailed_once_with_its_total_even_if_delivered_twice(
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    await bus.register(customer)
    confirmed = _confirmed(customer, total_cents=4205)
    duplicates_before = sample("events_consumed_total", DUPLICATE_CONFIRMED)

    await bus.publish(confirmed, confirmed)  # the broker delivers at least once

    # The consumer recorded the second copy as a duplicate and the one mail as sent: nothing is
    # left that could send another.
    await eventually(
        lambda: sample("events_consumed_total", DUPLICATE_CONFIRMED) > duplicates_before
    )
    await eventually(lambda: _status(db, confirmed.id, "sent"))
    mails = mailbox.about(confirmed.id)
    assert len(mails) == 1
    assert mails[0]["To"] == customer.email
    assert "42.05 EUR" in _body(mails[0])
    rows = await db.notifications(confirmed.id)
    assert [(r["kind"], r["status"], r["attempts"]) for r in rows] == [
        ("order_confirmed", "sent", 1)
    ]


async def _status(db: WorkerDb, event_id: uuid.UUID, status: str) -> bool:
    rows = await db.notifications(event_id)
    return bool(rows) and rows[0]["status"] == status


async def test_pending_mails_are_sent_once_after_a_restart_even_if_the_event_comes_again(
    start_worker: Callable[..., Any],
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    confirmed = _confirmed(customer)
    # First run: the mail server is unreachable, so the mail stays pending (retried).
    async with start_worker(smtp_url=closed_port_url("smtp")):
        await bus.register(customer)
        await bus.publish(confirmed)

        async def attempted() -> bool:
            rows = await db.notifications(confirmed.id)
            return bool(rows) and rows[0]["attempts"] >= 1 and rows[0]["last_error"] is not None

        await eventually(attempted)
    rows = await db.notifications(confirmed.id)
    assert rows[0]["status"] == "pending"
    assert mailbox.about(confirmed.id) == []

    # While the worker is down the broker redelivers the event (as after a lost ack).
    await bus.publish(confirmed)
    duplicates_before = sample("events_consumed_total", DUPLICATE_CONFIRMED)

    async with start_worker():
        # The copy is recorded as a duplicate and the pending mail as sent, once.
        await eventually(
            lambda: sample("events_consumed_total", DUPLICATE_CONFIRMED) > duplicates_before
        )
        await eventually(lambda: _status(db, confirmed.id, "sent"))
    assert len(mailbox.about(confirmed.id)) == 1
    assert len(await db.notifications(confirmed.id)) == 1


@pytest.mark.usefixtures("client")
@pytest.mark.parametrize(
    ("code", "reason", "told"),
    [
        # The worker words the machine-readable reason itself: orders' wording does not matter.
        (RejectionReason.OUT_OF_STOCK, "reworded by orders", "out of stock"),
        (RejectionReason.TIMED_OUT, "reworded by orders", "timed out waiting for stock"),
        # An event of an orders version older than reason_code: its wording is all there is.
        (None, "not enough stock", "not enough stock"),
    ],
)
async def test_a_rejected_order_is_mailed_with_its_reason(  # noqa: PLR0917 - parametrised
    customer: Customer,
    bus: Bus,
    mailbox: Mailbox,
    code: RejectionReason | None,
    reason: str,
    told: str,
) -> None:
    await bus.register(customer)
    rejected = event_of(
        OrderRejectedV1(order_id=uuid.uuid4(), user_id=customer.id, reason=reason, reason_code=code)
    )
    await bus.publish(rejected)

    await eventually(lambda: len(mailbox.about(rejected.id)) == 1)
    mail = mailbox.about(rejected.id)[0]
    assert "could not be accepted" in str(mail["Subject"])
    assert f"Reason: {told}\r\n" in _body(mail)


@pytest.mark.usefixtures("client")
async def test_a_customer_cancel_is_mailed_but_a_stock_compensation_is_not(
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
    mailbox: Mailbox,
) -> None:
    await bus.register(customer)
    order_id = uuid.uuid4()
    cancelled = event_of(
        OrderCancelledV1(
            order_id=order_id,
            user_id=customer.id,
            reason="reworded by orders",
            reason_code=CancellationReason.BY_CUSTOMER,
        )
    )
    compensation = event_of(
        OrderCancelledV1(
            order_id=order_id,
            user_id=customer.id,
            reason="reworded by orders",
            reason_code=CancellationReason.COMPENSATION,
        )
    )
    # From an orders version older than reason_code: recognised by its wording.
    legacy_compensation = event_of(
        OrderCancelledV1(
            order_id=order_id,
            user_id=customer.id,
            reason="stock reserved after the order was rejected",
        )
    )
    await bus.publish(cancelled, compensation, legacy_compensation)

    await eventually(lambda: len(mailbox.about(cancelled.id)) == 1)
    for ignored in (compensation, legacy_compensation):
        await eventually(partial(db.handled, ignored.id))
        # Handled without a notification: nothing will ever mail it (mails come from one).
        assert await db.notifications(ignored.id) == []
        assert mailbox.about(ignored.id) == []
    assert "is cancelled" in str(mailbox.about(cancelled.id)[0]["Subject"])
    assert "(cancelled by customer)" in _body(mailbox.about(cancelled.id)[0])


async def test_an_order_event_before_the_registration_is_retried_until_the_user_is_known(
    start_worker: Callable[..., Any],
    customer: Customer,
    bus: Bus,
    mailbox: Mailbox,
) -> None:
    confirmed = _confirmed(customer)
    retried = {"event_type": "order.confirmed.v1", "outcome": "retried"}
    before = sample("events_consumed_total", retried)
    async with start_worker(consumer_retry_delays_ms=[300, 600, 1200, 2400]):
        await bus.publish(confirmed)
        await eventually(lambda: sample("events_consumed_total", retried) > before)
        assert mailbox.about(confirmed.id) == []

        await bus.register(customer)

        await eventually(lambda: len(mailbox.about(confirmed.id)) == 1)
        assert mailbox.about(confirmed.id)[0]["To"] == customer.email


async def test_a_mail_that_cannot_be_sent_is_marked_failed_after_its_attempts(
    start_worker: Callable[..., Any],
    customer: Customer,
    bus: Bus,
    db: WorkerDb,
) -> None:
    failed = {"kind": "order_confirmed", "outcome": "failed"}
    before = sample("worker_emails_total", failed)
    confirmed = _confirmed(customer)
    async with start_worker(smtp_url=closed_port_url("smtp"), email_max_attempts=3):
        await bus.register(customer)
        await bus.publish(confirmed)
        await eventually(lambda: _status(db, confirmed.id, "failed"))

    [row] = await db.notifications(confirmed.id)
    assert row["attempts"] == 3
    assert row["sent_at"] is None
    assert row["last_error"]
    assert sample("worker_emails_total", failed) == before + 1
