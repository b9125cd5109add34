"""Fleet's integration events: a CloudEvents 1.0 envelope around versioned pydantic payloads.

Every payload class names its versioned type (`order.placed.v1`); :data:`EVENT_TYPES` is the
registry consumers parse against. A breaking change to a payload means a new class with a new
version (`...v2`), never an edit of the old one: the JSON Schema check guards that.
"""

from contracts.events.envelope import (
    CloudEvent,
    EventPayload,
    InvalidEventError,
    UnknownEventError,
    new_event,
    parse_event,
)
from contracts.events.payloads import (
    EVENT_TYPES,
    CancellationReason,
    LineItem,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderPlacedV1,
    OrderRejectedV1,
    ProductUpdatedV1,
    RejectionReason,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
    UserRegisteredV1,
)

__all__ = [
    "EVENT_TYPES",
    "CancellationReason",
    "CloudEvent",
    "EventPayload",
    "InvalidEventError",
    "LineItem",
    "OrderCancelledV1",
    "OrderConfirmedV1",
    "OrderPlacedV1",
    "OrderRejectedV1",
    "ProductUpdatedV1",
    "RejectionReason",
    "StockRejectedV1",
    "StockReleasedV1",
    "StockReservedV1",
    "UnknownEventError",
    "UserRegisteredV1",
    "new_event",
    "parse_event",
]
