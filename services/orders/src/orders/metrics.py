"""Business metrics of the order saga, counted only once the change they describe committed."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS_PLACED = Counter("orders_placed_total", "Orders placed (pending, waiting for stock).")
ORDERS_CONFIRMED = Counter("orders_confirmed_total", "Orders confirmed after stock was reserved.")
ORDERS_REJECTED = Counter(
    "orders_rejected_total",
    "Orders rejected, by reason: out_of_stock, timeout or other.",
    ["reason"],
)
REJECTION_REASONS = ("out_of_stock", "timeout", "other")
for _reason in REJECTION_REASONS:
    ORDERS_REJECTED.labels(_reason)  # exported as 0 from the start, not only after a first one
ORDERS_CANCELLED = Counter("orders_cancelled_total", "Orders cancelled by their customer.")
SAGA_DURATION = Histogram(
    "order_saga_duration_seconds",
    "Time from placing an order to its confirmation or rejection.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60, 120),  # 2: the confirmation SLO
)


def rejection_label(reason: str) -> str:
    """A bounded label for a free-text rejection reason."""
    text = reason.lower()
    if "timed out" in text:
        return "timeout"
    if "stock" in text:
        return "out_of_stock"
    return "other"


ADMITTED_SHARE = Gauge(
    "orders_admission_share", "Share of new orders admitted (1: all; less while decisions lag)."
)
ADMISSION_REFUSED = Counter(
    "orders_admission_refused_total", "New orders refused (503) because decisions were lagging."
)
