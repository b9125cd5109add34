"""What the orders use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from typing import Any

from chassis.problems import (
    ConflictError,
    DomainError,
    NotFoundError,
    UnauthorizedError,
    UnprocessableError,
)


class OrderNotFoundError(NotFoundError):
    code, title = "order-not-found", "Order not found"


class OrderNotCancellableError(ConflictError):
    code, title = "order-not-cancellable", "Order can no longer be cancelled"


class IdempotencyKeyRequiredError(DomainError):
    status, code, title = 400, "idempotency-key-required", "Idempotency-Key header is required"


class IdempotencyKeyInvalidError(DomainError):
    status, code, title = 400, "idempotency-key-invalid", "Idempotency-Key header is not valid"


class IdempotencyKeyReusedError(UnprocessableError):
    code, title = "idempotency-key-reused", "Idempotency-Key was used with another request"


class IdempotencyKeyInFlightError(ConflictError):
    code, title = (
        "idempotency-key-in-flight",
        "Another request with this Idempotency-Key is running",
    )


class UnknownProductsError(UnprocessableError):
    code, title = "unknown-product", "Order names products that do not exist"


class MixedCurrenciesError(UnprocessableError):
    code, title = "mixed-currencies", "Order items are priced in different currencies"


class NotACustomerError(UnauthorizedError):
    code, title = "invalid-token", "Token does not name a user"


class CatalogUnavailableError(DomainError):
    """Prices cannot be read right now; the client may retry the same request later."""

    status, code, title = 503, "catalog-unavailable", "Prices are unavailable right now"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)


class OrdersOverloadedError(DomainError):
    """New orders are refused for now (admission control); the client may retry later."""

    status, code, title = 503, "overloaded", "Orders are not being accepted right now"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)
