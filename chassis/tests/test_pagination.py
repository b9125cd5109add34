"""Page size caps and keyset pages: one row more than the page says whether another follows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from chassis.pagination import (
    InvalidCursorError,
    PageKey,
    capped_limit,
    decode_cursor,
    encode_cursor,
    keyset_page,
)


@dataclass(frozen=True)
class Row:
    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class PairKey:
    """A list sorted by two ids, as reservations are by (order_id, product_id)."""

    first: uuid.UUID
    second: uuid.UUID


@dataclass(frozen=True)
class Pair:
    first: uuid.UUID
    second: uuid.UUID
    note: str


START = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = [Row(START + timedelta(seconds=i), uuid.uuid4()) for i in range(5)]


async def fetch_first(n: int) -> Sequence[Row]:
    return ROWS[:n]


def test_a_limit_above_the_maximum_is_capped() -> None:
    assert capped_limit(500, 200) == 200
    assert capped_limit(20, 200) == 20


async def test_a_page_with_rows_after_it_ends_with_the_cursor_of_its_last_row() -> None:
    page = await keyset_page(fetch_first, limit=3)

    assert page.rows == ROWS[:3]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == PageKey(ROWS[2].created_at, ROWS[2].id)


async def test_the_last_page_has_no_cursor_even_when_full() -> None:
    page = await keyset_page(fetch_first, limit=5)

    assert page.rows == ROWS
    assert page.next_cursor is None


async def test_a_page_asks_for_one_row_more_than_it_holds() -> None:
    asked: list[int] = []

    async def fetch(n: int) -> Sequence[Row]:
        asked.append(n)
        return ROWS[:n]

    await keyset_page(fetch, limit=2)

    assert asked == [3]


async def test_a_list_sorted_by_another_key_pages_by_it() -> None:
    rows = sorted(
        (Pair(uuid.uuid4(), uuid.uuid4(), "x") for _ in range(4)),
        key=lambda r: (r.first, r.second),
    )

    async def fetch(n: int) -> Sequence[Pair]:
        return rows[:n]

    page = await keyset_page(fetch, limit=2, key=lambda r: PairKey(r.first, r.second))

    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, PairKey) == PairKey(rows[1].first, rows[1].second)


def test_a_cursor_is_refused_for_a_list_of_another_key() -> None:
    by_created = encode_cursor(PageKey(START, uuid.uuid4()))
    by_pair = encode_cursor(PairKey(uuid.uuid4(), uuid.uuid4()))

    with pytest.raises(InvalidCursorError):
        decode_cursor(by_created, PairKey)
    with pytest.raises(InvalidCursorError):
        decode_cursor(by_pair)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        encode_cursor(PageKey(START, uuid.uuid4()))[:-1] + "*",
        "x" * 201,
        # A key without a time zone: not one a page produced.
        "MjAyNi0wMS0wMVQwMDowMDowMHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
    ],
)
def test_a_cursor_no_page_produced_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)
