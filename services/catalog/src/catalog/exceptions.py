"""What the catalog's use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import Conflict, NotFound


class ProductNotFound(NotFound):
    code, title = "product-not-found", "Product not found"


class DuplicateSku(Conflict):
    code, title = "duplicate-sku", "A product with this SKU exists"
