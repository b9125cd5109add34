"""`GET /v1/admin/audit`: the audit trails of auth, catalog and worker as one, newest first.

Each record lives in the schema of the service whose action it records, written in the action's
own transaction (`chassis.audit`): that schema is the record of truth, and no service reads
another's. So the gateway reads each trail where it lives, with the admin's own token (each
service checks the admin role itself), and merges them here, rather than every audited action
also publishing an event to one service keeping a copy: a copy would be a second store to keep,
purge and trust, late by the relay's lag and one more broker message per login, for a read only
admins make now and then.

The merge is exact because every trail is keyed alike: newest first by `(at, id)`, and ids are
UUIDs no two services share. A page asks each service for a page of the same filters starting
after the same key, takes the `limit` newest of what comes back, and its cursor is the key of
its last record (`chassis.pagination`'s cursor): the next page asks every service for records
after it. A service's record not in this page is older than the cursor (cut by the merge, or
not fetched because that service had `limit` newer ones), so no record is skipped or repeated.

A trail that cannot be read fails the whole read with that service's answer (a problem, or the
gateway's 502/503/504): an audit read that silently left out a service would mislead.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from chassis.pagination import PageKey, cursor_key, encode_cursor
from contracts.audit import AuditPage, AuditQuery
from gateway.exceptions import BadGatewayError
from gateway.forwarding import RawHeaders
from gateway.routes import ADMIN_AUDIT
from gateway.upstream_calls import UpstreamAnswer, call
from gateway.upstreams import Upstream

AUDITED_SERVICES = ("auth", "catalog", "worker")
# Each service serves its own trail at the public path of the merged one.
AUDIT_PATH = ADMIN_AUDIT


class TrailAnswerError(Exception):
    """A service answered its trail with something else than a page: relayed as it is."""

    def __init__(self, answer: UpstreamAnswer) -> None:
        super().__init__(f"status {answer.status}")
        self.answer = answer


def merge(pages: Sequence[AuditPage], *, limit: int) -> AuditPage:
    """The `limit` newest records of `pages` (each newest first), and the cursor after them if
    any service has more."""
    records = sorted(
        (record for page in pages for record in page.items),
        key=lambda record: (record.at, record.id),
        reverse=True,
    )
    kept = records[:limit]
    more = len(records) > limit or any(page.next_cursor is not None for page in pages)
    next_cursor = None
    if more and kept:
        last = kept[-1]
        next_cursor = encode_cursor(PageKey(created_at=last.at, id=last.id))
    return AuditPage(items=kept, next_cursor=next_cursor)


async def _trail(
    upstream: Upstream, query: AuditQuery, headers: RawHeaders, deadline: float
) -> AuditPage:
    target = f"{AUDIT_PATH}?{urllib.parse.urlencode(query.parameters(cursor=query.cursor))}"
    answer = await call(
        upstream=upstream,
        method="GET",
        target=target,
        headers=headers,
        body=b"",
        deadline_seconds=deadline,
    )
    if answer.status != 200:
        raise TrailAnswerError(answer)
    try:
        return AuditPage.model_validate_json(answer.body)
    except ValidationError:
        raise BadGatewayError(f"The {upstream.name} service's audit trail is not a page.") from None


async def audit_trail(
    *,
    upstreams: Mapping[str, Upstream],
    query: AuditQuery,
    authorization: str,
    forwarded: RawHeaders,
    deadline: float,
) -> AuditPage:
    """One page of the merged trail; raises `TrailAnswerError` with the first service's answer
    that is not a page (in `AUDITED_SERVICES` order), or the gateway's own upstream error."""
    cursor_key(query.cursor)  # a malformed cursor is refused here, before any call
    headers: RawHeaders = [
        (b"accept", b"application/json"),
        (b"accept-encoding", b"identity"),
        (b"authorization", authorization.encode("latin-1")),
        *forwarded,
    ]
    results = await asyncio.gather(
        *(_trail(upstreams[name], query, headers, deadline) for name in AUDITED_SERVICES),
        return_exceptions=True,
    )
    pages: list[AuditPage] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        pages.append(result)
    return merge(pages, limit=query.capped_limit())
