"""Pages of list endpoints: the page size cap, and keyset pages with opaque cursors.

A requested `limit` above a list's maximum page size is capped, not refused (`capped_limit`).
Keyset pages walk a sort key: `(created_at, id)` (`PageKey`) unless a list names another one,
a frozen dataclass of `datetime` and `uuid.UUID` fields in sort order (orders' internal read by
`id`, catalog's reservations by `(order_id, product_id)`). `keyset_page` fetches one row more
than the page holds, which says whether another page follows without a COUNT, and the page's
`next_cursor` is the key of its last row. Cursors are base64url, without padding; clients must
treat one as an opaque token: anything that does not decode to a key of the list's shape is
refused as :class:`InvalidCursorError`, never passed on to the database.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import typing
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, overload

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


KeyT = TypeVar("KeyT")  # a sort key: a frozen dataclass of datetime and uuid.UUID fields


KeyFields = tuple[tuple[str, type[datetime] | type[uuid.UUID]], ...]
_KEY_FIELDS: dict[type[Any], KeyFields] = {}


def _key_fields(shape: type[Any]) -> KeyFields:
    """The (name, type) of each field of a sort key's dataclass, in sort order."""
    known = _KEY_FIELDS.get(shape)
    if known is not None:
        return known
    if not dataclasses.is_dataclass(shape):
        msg = f"{shape.__name__} is not a dataclass"
        raise TypeError(msg)
    hints = typing.get_type_hints(shape)
    fields = tuple((field.name, hints[field.name]) for field in dataclasses.fields(shape))
    for name, kind in fields:
        if kind not in (datetime, uuid.UUID):
            msg = f"{shape.__name__}.{name} is a {kind}; a sort key holds datetimes and UUIDs"
            raise TypeError(msg)
    _KEY_FIELDS[shape] = fields
    return fields


def _part(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def encode_cursor(key: Any) -> str:
    """The opaque cursor of a sort key (`PageKey` or another key dataclass)."""
    parts = (_part(getattr(key, name)) for name, _ in _key_fields(type(key)))
    raw = _SEPARATOR.join(parts).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _parse(kind: type[datetime] | type[uuid.UUID], text: str) -> datetime | uuid.UUID:
    if kind is uuid.UUID:
        return uuid.UUID(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(_MALFORMED)
    return moment


@overload
def decode_cursor(cursor: str) -> PageKey: ...
@overload
def decode_cursor(cursor: str, shape: type[KeyT]) -> KeyT: ...
def decode_cursor(cursor: str, shape: type[Any] = PageKey) -> Any:
    """The sort key a cursor holds; InvalidCursorError unless it is a key of `shape`."""
    fields = _key_fields(shape)
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise InvalidCursorError(_MALFORMED)
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
        texts = raw.split(_SEPARATOR)
        if len(texts) != len(fields):
            raise ValueError(_MALFORMED)
        values = {
            name: _parse(kind, text) for (name, kind), text in zip(fields, texts, strict=True)
        }
    except (ValueError, binascii.Error) as exc:  # UnicodeError is a ValueError
        raise InvalidCursorError(_MALFORMED) from exc
    return shape(**values)


@overload
def cursor_key(cursor: str | None) -> PageKey | None: ...
@overload
def cursor_key(cursor: str | None, shape: type[KeyT]) -> KeyT | None: ...
def cursor_key(cursor: str | None, shape: type[Any] = PageKey) -> Any:
    """The key a page starts after; None for the first page."""
    return decode_cursor(cursor, shape) if cursor is not None else None


def capped_limit(limit: int, maximum: int) -> int:
    """The page size to serve for a requested `limit`: at most `maximum`."""
    return min(limit, maximum)


class Keyed(Protocol):
    """A row of a list paged by `(created_at, id)`."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT")
KeyedT = TypeVar("KeyedT", bound=Keyed)


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[RowT]):
    rows: list[RowT]
    next_cursor: str | None


def _created_and_id(row: Keyed) -> PageKey:
    return PageKey(created_at=row.created_at, id=row.id)


@overload
async def keyset_page(
    fetch: Callable[[int], Awaitable[Sequence[KeyedT]]], *, limit: int
) -> KeysetPage[KeyedT]: ...
@overload
async def keyset_page(
    fetch: Callable[[int], Awaitable[Sequence[RowT]]], *, limit: int, key: Callable[[RowT], Any]
) -> KeysetPage[RowT]: ...
async def keyset_page(
    fetch: Callable[[int], Awaitable[Sequence[Any]]],
    *,
    limit: int,
    key: Callable[[Any], Any] = _created_and_id,
) -> KeysetPage[Any]:
    """Up to `limit` rows, from `fetch(n)` (the first n rows after the page's start), and the
    cursor of the next page when there is one: the `key` of the page's last row (its
    `PageKey` unless the list sorts by another key)."""
    rows = await fetch(limit + 1)
    page = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor(key(page[-1]))
    return KeysetPage(rows=page, next_cursor=next_cursor)
