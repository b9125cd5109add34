"""What the catalog's use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import ConflictError, NotFoundError


class ProductNotFoundError(NotFoundError):
    code, title = "product-not-found", "Product not found"


class DuplicateSkuError(ConflictError):
    code, title = "duplicate-sku", "A product with this SKU exists"
