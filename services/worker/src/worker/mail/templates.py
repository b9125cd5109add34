"""The customer e-mails, composed from an event's payload when it is consumed.

The text is fixed at that moment and stored with the notification, so a retry days later sends
exactly what the customer would have received at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from contracts.events import (
    CancellationReason,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderRejectedV1,
    RejectionReason,
)

# Currencies without minor units (ISO 4217 exponent 0); every other one has two here.
_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                           "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})  # fmt: skip
# What the customer is told, by the event's machine-readable reason: the worker owns this
# wording, so rewording a reason in another service never changes a customer's mail.
REJECTIONS = {
    RejectionReason.OUT_OF_STOCK: "out of stock",
    RejectionReason.UNKNOWN_PRODUCT: "unknown product",
    RejectionReason.TIMED_OUT: "timed out waiting for stock",
}
CANCELLATIONS = {CancellationReason.BY_CUSTOMER: "cancelled by customer"}
# Events of an orders version older than `reason_code` say "compensation" only in their wording.
LEGACY_COMPENSATION_PREFIX = "stock reserved after the order was"
Code = TypeVar("Code", bound=StrEnum)
SIGNATURE = "\n\n-- \nFleet\n"


@dataclass(frozen=True, slots=True)
class Mail:
    kind: str  # one of KINDS
    subject: str
    body: str


# The kinds of mail composed here (the `kind` label of `worker_emails_total`).
KINDS = ("welcome", "order_confirmed", "order_rejected", "order_cancelled", "export_ready")


def money(cents: int, currency: str) -> str:
    if currency.upper() in _ZERO_DECIMAL:
        return f"{cents} {currency}"
    return f"{cents // 100}.{cents % 100:02d} {currency}"


def is_compensation(cancelled: OrderCancelledV1) -> bool:
    """A cancel that only gives stock back: the customer already got the rejection or their own
    cancel's mail, so it must not be mailed again."""
    if cancelled.reason_code is not None:
        return cancelled.reason_code is CancellationReason.COMPENSATION
    return cancelled.reason.startswith(LEGACY_COMPENSATION_PREFIX)


def welcome(email: str) -> Mail:
    return Mail(
        kind="welcome",
        subject="Welcome to Fleet",
        body=f"Hello,\n\nyour Fleet account {email} is ready. Happy shopping!{SIGNATURE}",
    )


def order_confirmed(order: OrderConfirmedV1) -> Mail:
    total = money(order.total_cents, order.currency)
    return Mail(
        kind="order_confirmed",
        subject=f"Your order {order.order_id} is confirmed",
        body=(
            f"Hello,\n\nyour order {order.order_id} is confirmed: its items are reserved for "
            f"you.\n\nTotal: {total}{SIGNATURE}"
        ),
    )


def order_rejected(order: OrderRejectedV1) -> Mail:
    return Mail(
        kind="order_rejected",
        subject=f"Your order {order.order_id} could not be accepted",
        body=(
            f"Hello,\n\nwe are sorry: your order {order.order_id} could not be accepted.\n\n"
            f"Reason: {_told(REJECTIONS, order.reason_code, order.reason)}\n\n"
            f"Nothing was charged.{SIGNATURE}"
        ),
    )


def order_cancelled(order: OrderCancelledV1) -> Mail:
    return Mail(
        kind="order_cancelled",
        subject=f"Your order {order.order_id} is cancelled",
        body=(
            f"Hello,\n\nyour order {order.order_id} is cancelled "
            f"({_told(CANCELLATIONS, order.reason_code, order.reason)}).{SIGNATURE}"
        ),
    )


def _told(wording: Mapping[Code, str], code: Code | None, reason: str) -> str:
    """The worker's wording of `code`; the producer's `reason` only for an event without a code
    (or with one this worker has no wording for)."""
    return wording.get(code, reason) if code is not None else reason


def export_ready(*, export_id: object, order_count: int, fmt: str, link_minutes: int) -> Mail:
    """The file's link is not in the mail (a presigned URL is short-lived): the export's
    resource gives a fresh one on every read."""
    noun = "order" if order_count == 1 else "orders"
    return Mail(
        kind="export_ready",
        subject=f"Your export {export_id} is ready",
        body=(
            f"Hello,\n\nyour export of {order_count} {noun} ({fmt}) is ready.\n\n"
            f"Download it from GET /v1/orders/exports/{export_id}: its download_url is valid "
            f"for {link_minutes} minutes, and each read gives a fresh one.{SIGNATURE}"
        ),
    )
