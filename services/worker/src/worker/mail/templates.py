"""The customer e-mails, composed from an event's payload when it is consumed.

The text is fixed at that moment and stored with the notification, so a retry days later sends
exactly what the customer would have received at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.events import OrderCancelledV1, OrderConfirmedV1, OrderRejectedV1

# Currencies without minor units (ISO 4217 exponent 0); every other one has two here.
_ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                           "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})  # fmt: skip
# orders announces a compensation (stock reserved for an order that had already been rejected or
# cancelled, given back) as `order.cancelled` with this reason.
COMPENSATION_PREFIX = "stock reserved after the order was"
SIGNATURE = "\n\n-- \nFleet\n"


@dataclass(frozen=True, slots=True)
class Mail:
    kind: str  # one of KINDS
    subject: str
    body: str


# The kinds of mail composed here (the `kind` label of `worker_emails_total`).
KINDS = ("welcome", "order_confirmed", "order_rejected", "order_cancelled")


def money(cents: int, currency: str) -> str:
    if currency.upper() in _ZERO_DECIMAL:
        return f"{cents} {currency}"
    return f"{cents // 100}.{cents % 100:02d} {currency}"


def is_compensation(cancelled: OrderCancelledV1) -> bool:
    """A cancel that only gives stock back: the customer already got the rejection or their own
    cancel's mail, so it must not be mailed again."""
    return cancelled.reason.startswith(COMPENSATION_PREFIX)


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
            f"Reason: {order.reason}\n\nNothing was charged.{SIGNATURE}"
        ),
    )


def order_cancelled(order: OrderCancelledV1) -> Mail:
    return Mail(
        kind="order_cancelled",
        subject=f"Your order {order.order_id} is cancelled",
        body=(f"Hello,\n\nyour order {order.order_id} is cancelled ({order.reason}).{SIGNATURE}"),
    )
