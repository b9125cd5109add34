"""What the orders use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from typing import Any

from chassis.problems import Conflict, DomainError, NotFound, Unauthorized, Unprocessable


class OrderNotFound(NotFound):
    code, title = "order-not-found", "Order not found"


class OrderNotCancellable(Conflict):
    code, title = "order-not-cancellable", "Order can no longer be cancelled"


class IdempotencyKeyRequired(DomainError):
    status, code, title = 400, "idempotency-key-required", "Idempotency-Key header is required"


class IdempotencyKeyInvalid(DomainError):
    status, code, title = 400, "idempotency-key-invalid", "Idempotency-Key header is not valid"


class IdempotencyKeyReused(Unprocessable):
    code, title = "idempotency-key-reused", "Idempotency-Key was used with another request"


class IdempotencyKeyInFlight(Conflict):
    code, title = (
        "idempotency-key-in-flight",
        "Another request with this Idempotency-Key is running",
    )


class UnknownProducts(Unprocessable):
    code, title = "unknown-product", "Order names products that do not exist"


class MixedCurrencies(Unprocessable):
    code, title = "mixed-currencies", "Order items are priced in different currencies"


class NotACustomer(Unauthorized):
    code, title = "invalid-token", "Token does not name a user"


class CatalogUnavailable(DomainError):
    """Prices cannot be read right now; the client may retry the same request later."""

    status, code, title = 503, "catalog-unavailable", "Prices are unavailable right now"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)


class OrdersOverloaded(DomainError):
    """New orders are refused for now (admission control); the client may retry later."""

    status, code, title = 503, "overloaded", "Orders are not being accepted right now"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)
