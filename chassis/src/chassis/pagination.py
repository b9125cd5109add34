"""Opaque keyset cursors for `(created_at, id)`-ordered pages: base64url, without padding.

Clients must treat a cursor as an opaque token; anything that does not decode to a key this
module produced is refused as :class:`InvalidCursor`, never passed on to the database.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from chassis.problems import Unprocessable


class InvalidCursor(Unprocessable):
    code, title = "invalid-cursor", "Pagination cursor is not valid"


CURSOR_MAX_LENGTH = 200
_SEPARATOR = "|"
_MALFORMED = "The cursor is malformed; use the next_cursor of a page."


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where a page ends: the sort key of its last row."""

    created_at: datetime
    id: uuid.UUID


def encode_cursor(key: PageKey) -> str:
    raw = f"{key.created_at.isoformat()}{_SEPARATOR}{key.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise InvalidCursor(_MALFORMED)
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        created, _, ident = raw.partition(_SEPARATOR)
        created_at = datetime.fromisoformat(created)
        key = PageKey(created_at=created_at, id=uuid.UUID(ident))
    except (ValueError, binascii.Error) as exc:  # UnicodeError is a ValueError
        raise InvalidCursor(_MALFORMED) from exc
    if created_at.tzinfo is None:
        raise InvalidCursor(_MALFORMED)
    return key
