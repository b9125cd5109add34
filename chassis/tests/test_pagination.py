"""Page size caps and keyset pages: one row more than the page says whether another follows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chassis.pagination import PageKey, capped_limit, decode_cursor, keyset_page


@dataclass(frozen=True)
class Row:
    created_at: datetime
    id: uuid.UUID


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
