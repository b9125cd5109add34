"""Business metrics of the order saga, counted only once the change they describe committed."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from chassis.metrics import initialise_labels
from contracts.events import RejectionReason

ORDERS_PLACED = Counter("orders_placed_total", "Orders placed (pending, waiting for stock).")
ORDERS_CONFIRMED = Counter("orders_confirmed_total", "Orders confirmed after stock was reserved.")
ORDERS_REJECTED = Counter(
    "orders_rejected_total",
    "Orders rejected, by reason: out_of_stock, timeout or other.",
    ["reason"],
)
REJECTION_REASONS = ("out_of_stock", "timeout", "other")
initialise_labels(ORDERS_REJECTED, reason=REJECTION_REASONS)
ORDERS_CANCELLED = Counter("orders_cancelled_total", "Orders cancelled by their customer.")
SAGA_DURATION = Histogram(
    "order_saga_duration_seconds",
    "Time from placing an order to its confirmation or rejection.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60, 120),  # 2: the confirmation SLO
)


_REJECTION_LABELS = {
    RejectionReason.OUT_OF_STOCK: "out_of_stock",
    RejectionReason.TIMED_OUT: "timeout",
}


def rejection_label(code: RejectionReason | None) -> str:
    """The `reason` label of a rejection: from its machine-readable code (`other` for the rest,
    and for an answer of a catalog that sends no code)."""
    return _REJECTION_LABELS.get(code, "other") if code is not None else "other"


ADMITTED_SHARE = Gauge(
    "orders_admission_share", "Share of new orders admitted (1: all; less while decisions lag)."
)
ADMISSION_REFUSED = Counter(
    "orders_admission_refused_total", "New orders refused (503) because decisions were lagging."
)
