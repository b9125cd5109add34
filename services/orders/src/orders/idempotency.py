"""`Idempotency-Key`: the header's rules and the fingerprint of the request it protects.

A key belongs to one user and one request body. The first successful response to it is stored
with the order (same transaction) and replayed to every retry; the same key with another body is
refused. Failed attempts store nothing, so a retry after an error (catalog down, unknown
product) is processed afresh.

A key is remembered for `IDEMPOTENCY_KEY_TTL_HOURS` (24 by default, like Stripe's): after that
a request with it is a new request, whatever its body, and places a new order. Expired keys
are deleted by the retention purge (`orders.retention`); until then they are ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from orders.exceptions import IdempotencyKeyInvalidError, IdempotencyKeyRequiredError
from orders.models import IDEMPOTENCY_KEY_MAX_LENGTH
from orders.schemas import PlaceOrder

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_PRINTABLE = re.compile(rf"^[\x20-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$")


def checked_key(value: str | None) -> str:
    """The header's value if it is 1-200 printable ASCII characters."""
    if value is None:
        raise IdempotencyKeyRequiredError(
            f"Send an {HEADER} header (for example a UUID) so the order can be retried safely."
        )
    if not _PRINTABLE.match(value):
        raise IdempotencyKeyInvalidError(
            f"{HEADER} must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters."
        )
    return value


def request_hash(order_in: PlaceOrder) -> str:
    """SHA-256 of the canonical JSON of the validated body: formatting and key order of what
    the client sent do not matter, its content does."""
    canonical = json.dumps(order_in.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What a retry of the key gets back."""

    status: int
    order_id: str
    body: bytes  # the JSON document
    replayed: bool
