"""Pages of list endpoints: the page size cap, and keyset pages with opaque cursors.

A requested `limit` above a list's maximum page size is capped, not refused (`capped_limit`).
Keyset pages walk `(created_at, id)`: `keyset_page` fetches one row more than the page holds,
which says whether another page follows without a COUNT, and the page's `next_cursor` is the key
of its last row. Cursors are base64url, without padding; clients must treat one as an opaque
token: anything that does not decode to a key this module produced is refused as
:class:`InvalidCursorError`, never passed on to the database.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from chassis.problems import UnprocessableError


class InvalidCursorError(UnprocessableError):
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
        raise InvalidCursorError(_MALFORMED)
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        created, _, ident = raw.partition(_SEPARATOR)
        created_at = datetime.fromisoformat(created)
        key = PageKey(created_at=created_at, id=uuid.UUID(ident))
    except (ValueError, binascii.Error) as exc:  # UnicodeError is a ValueError
        raise InvalidCursorError(_MALFORMED) from exc
    if created_at.tzinfo is None:
        raise InvalidCursorError(_MALFORMED)
    return key


def cursor_key(cursor: str | None) -> PageKey | None:
    """The key a page starts after; None for the first page."""
    return decode_cursor(cursor) if cursor is not None else None


def capped_limit(limit: int, maximum: int) -> int:
    """The page size to serve for a requested `limit`: at most `maximum`."""
    return min(limit, maximum)


class Keyed(Protocol):
    """A row of a keyset-paged list."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT", bound=Keyed)


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[RowT]):
    rows: list[RowT]
    next_cursor: str | None


async def keyset_page(
    fetch: Callable[[int], Awaitable[Sequence[RowT]]], *, limit: int
) -> KeysetPage[RowT]:
    """Up to `limit` rows, from `fetch(n)` (the first n rows after the page's start), and the
    cursor of the next page when there is one."""
    rows = await fetch(limit + 1)
    page = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(PageKey(created_at=last.created_at, id=last.id))
    return KeysetPage(rows=page, next_cursor=next_cursor)
