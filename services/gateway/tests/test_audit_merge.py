"""The merged audit trail (gateway.audit.merge): pages of several services' trails, each newest
first, become one newest-first trail whose cursor, handed back to every service, walks it to the
end without skipping or repeating a record."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from chassis.pagination import cursor_key
from contracts.audit import AuditOutcome, AuditPage, AuditRecord
from gateway.audit import merge

START = datetime(2026, 12, 7, tzinfo=UTC)


def _trail(service: str, seconds: list[int]) -> list[AuditRecord]:
    records = [
        AuditRecord(
            id=uuid.uuid4(),
            at=START + timedelta(seconds=s),
            service=service,
            actor="anonymous",
            action=f"{service}.test",
            target=None,
            outcome=AuditOutcome.SUCCESS,
            client_ip=None,
            request_id=None,
        )
        for s in seconds
    ]
    return sorted(records, key=lambda r: (r.at, r.id), reverse=True)


def _page(trail: list[AuditRecord], cursor: str | None, limit: int) -> AuditPage:
    """What a service answers: its records after the cursor's key, as chassis.audit pages."""
    key = cursor_key(cursor)
    after = [r for r in trail if key is None or (r.at, r.id) < (key.created_at, key.id)]
    return AuditPage(items=after[:limit], next_cursor="more" if len(after) > limit else None)


def test_paging_the_merged_trail_yields_every_record_once_newest_first() -> None:
    rng = random.Random(7)
    trails = [
        _trail(service, [rng.randrange(0, 40) for _ in range(rng.randrange(0, 25))])
        for service in ("auth", "catalog", "worker")
    ]
    expected = sorted((r for t in trails for r in t), key=lambda r: (r.at, r.id), reverse=True)

    for limit in (1, 2, 3, 7, 100):
        seen: list[AuditRecord] = []
        cursor: str | None = None
        while True:
            page = merge([_page(t, cursor, limit) for t in trails], limit=limit)
            assert len(page.items) <= limit
            seen.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert [r.id for r in seen] == [r.id for r in expected], limit


def test_records_of_the_same_instant_are_ordered_by_id_across_services() -> None:
    auth, worker = _trail("auth", [5, 5]), _trail("worker", [5])

    page = merge(
        [AuditPage(items=auth, next_cursor=None), AuditPage(items=worker, next_cursor=None)],
        limit=10,
    )

    assert [r.id for r in page.items] == sorted((r.id for r in [*auth, *worker]), reverse=True)
    assert page.next_cursor is None


def test_a_page_filled_by_one_service_alone_still_leads_to_the_rest_of_its_trail() -> None:
    auth = _trail("auth", [1, 2, 3])
    empty: list[AuditRecord] = []

    first = merge([_page(auth, None, 2), _page(empty, None, 2)], limit=2)
    rest = merge([_page(auth, first.next_cursor, 2), _page(empty, first.next_cursor, 2)], limit=2)

    assert [r.id for r in [*first.items, *rest.items]] == [r.id for r in auth]
    assert rest.next_cursor is None
