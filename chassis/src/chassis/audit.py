"""The audit trail: who did what, when, from where, in which request, and how it ended.

Auth and admin actions are recorded in the schema of the service that owns them (its
`audit_log` table), by the use case itself, in the unit of work of the action: the row commits
with the action or not at all, at the cost of one INSERT in a transaction that exists anyway. A
refusal that rolls its unit back (a wrong password) is recorded in a short transaction of its own
(`AuditTrail.record_alone`). Each record carries the client address the gateway resolved (the
right-most `X-Forwarded-For` entry: the gateway replaces whatever a client sent there with one
address) and the request id, both read from the request being served (`chassis.http`).

Nothing secret is recorded: `details` are facts about the action (a field name, a key id, a
host), and a detail whose name says it is a password, token, secret or hash is refused outright
(`SecretInAuditError`), so such a mistake fails the first test that makes it.

The table is append-only: a trigger refuses UPDATE and TRUNCATE, and DELETE of a row younger
than a day, so the only deletion is the retention purge (`audit_expiry`, `AUDIT_RETENTION_DAYS`,
through the service's `chassis.retention.Purger`). Migrations create it with
`create_audit_log(op, schema)`.

Each service serves its own trail to admins (`audit_router`: `GET /v1/admin/audit`, newest first,
keyset pages through `chassis.pagination`); the gateway merges the three into the public
`GET /v1/admin/audit` (`gateway.audit`, which says why).
"""

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.sql.elements import conv
from starlette.datastructures import Headers

from chassis.db import UnitOfWork
from chassis.http import CURRENT_REQUEST
from chassis.pagination import cursor_key, keyset_page
from chassis.retention import Expiry
from chassis.security import admin_principal
from chassis.settings import WithAudit
from chassis.tokens import Principal
from contracts.audit import AuditOutcome, AuditPage, AuditQuery, AuditRecord

AUDIT_LOG = "audit_log"
ANONYMOUS = "anonymous"
OPERATOR = "operator"  # a command run by an operator (`python -m auth keys rotate`)
# Names of details that would hold a secret; refused wherever they appear in `details`.
_SECRET_WORDS = ("password", "token", "secret", "hash", "authorization", "cookie")
# A row younger than this cannot be deleted (the shortest AUDIT_RETENTION_DAYS).
_MIN_AGE_TO_DELETE = "1 day"
COMMENT = (
    "Append-only audit trail (chassis.audit): rows are only inserted, and deleted by the "
    "retention purge once older than AUDIT_RETENTION_DAYS."
)


class SecretInAuditError(ValueError):
    """A detail named like a secret was about to be recorded."""


def _columns() -> list[Any]:
    return [
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("client_ip", sa.Text, nullable=True),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        # Named in full (`conv`): migrations create it without the metadata's naming convention.
        sa.CheckConstraint("outcome IN ('success', 'failure')", name=conv("ck_audit_log_outcome")),
    ]


# Newest first, and the retention purge walks the same index from the oldest end.
_INDEXES = (
    ("ix_audit_log_created_at_id", ["created_at", "id"]),
    ("ix_audit_log_actor_created_at", ["actor", "created_at", "id"]),
    ("ix_audit_log_action_created_at", ["action", "created_at", "id"]),
)


def audit_log_table(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(AUDIT_LOG, metadata, *_columns(), comment=COMMENT)
    for name, columns in _INDEXES:
        sa.Index(name, *(table.c[column] for column in columns))
    return table


def _append_only_sql(schema: str) -> list[str]:
    function = f"{schema}.audit_log_append_only"
    table = f"{schema}.{AUDIT_LOG}"
    return [
        f"""
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND OLD.created_at < now() - interval '{_MIN_AGE_TO_DELETE}' THEN
                RETURN OLD;  -- the retention purge
            END IF;
            RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """,
        f"CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def create_audit_log(op: Any, schema: str) -> None:
    """For a migration: the table, its indexes and the trigger that keeps it append-only."""
    op.create_table(AUDIT_LOG, *_columns(), schema=schema, comment=COMMENT)
    for name, columns in _INDEXES:
        op.create_index(name, AUDIT_LOG, columns, schema=schema)
    for statement in _append_only_sql(schema):
        op.execute(statement)


def drop_audit_log(op: Any, schema: str) -> None:
    op.drop_table(AUDIT_LOG, schema=schema)  # its indexes and triggers go with it
    op.execute(f"DROP FUNCTION {schema}.audit_log_append_only()")


def _refuse_secrets(details: Mapping[str, Any]) -> None:
    for name, value in details.items():
        if any(word in name.lower() for word in _SECRET_WORDS):
            msg = f"audit details must hold no secret; `{name}` looks like one"
            raise SecretInAuditError(msg)
        if isinstance(value, Mapping):
            _refuse_secrets(value)


def request_client_ip() -> str | None:
    """The client address of the request being served: the right-most `X-Forwarded-For`
    entry (the one the gateway set), else the socket peer; None outside a request."""
    scope = CURRENT_REQUEST.get()
    if scope is None:
        return None
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    entries = [entry.strip() for entry in ",".join(forwarded).split(",") if entry.strip()]
    if entries:
        return entries[-1][:64]
    client = scope.get("client")
    return str(client[0]) if client else None


def request_actor() -> str:
    """The caller of the request being served, as its verified token names it
    (`chassis.security`), else `anonymous`."""
    scope = CURRENT_REQUEST.get()
    principal = scope.get("state", {}).get("principal") if scope is not None else None
    return principal.subject if isinstance(principal, Principal) else ANONYMOUS


def request_id() -> str | None:
    scope = CURRENT_REQUEST.get()
    state = scope.get("state", {}) if scope is not None else {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class _Keyed:
    """A record with the key `chassis.pagination` pages by."""

    created_at: datetime
    id: uuid.UUID
    record: AuditRecord


class AuditTrail:
    """The audit trail of one service, in its schema's `audit_log`."""

    def __init__(self, metadata: sa.MetaData, *, service: str) -> None:
        self.table = audit_log_table(metadata)
        self.service = service

    async def record(
        self,
        uow: UnitOfWork,
        *,
        action: str,
        actor: str | None = None,
        target: object = None,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Add the record to `uow`'s transaction: it commits with the action, or not at all.
        `actor` defaults to the request's verified caller."""
        values = dict(details or {})
        _refuse_secrets(values)
        await uow.session.execute(
            sa.insert(self.table).values(
                id=uuid.uuid4(),
                actor=request_actor() if actor is None else actor,
                action=action,
                target=None if target is None else str(target),
                outcome=outcome.value,
                client_ip=request_client_ip(),
                request_id=request_id(),
                details=values,
            )
        )

    async def record_alone(
        self,
        uow: UnitOfWork,
        *,
        action: str,
        actor: str | None = None,
        target: object = None,
        outcome: AuditOutcome = AuditOutcome.FAILURE,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Record in a transaction of its own: for a refusal whose own unit rolls back."""
        async with uow:
            await self.record(
                uow, actor=actor, action=action, target=target, outcome=outcome, details=details
            )
            await uow.commit()

    def _conditions(self, query: AuditQuery) -> list[sa.ColumnElement[bool]]:
        c = self.table.c
        conditions: list[sa.ColumnElement[bool]] = []
        if query.actor is not None:
            conditions.append(c.actor == query.actor)
        if query.action is not None:
            conditions.append(c.action == query.action)
        if query.since is not None:
            conditions.append(c.created_at >= query.since)
        if query.until is not None:
            conditions.append(c.created_at < query.until)
        return conditions

    def _of(self, row: sa.Row[Any]) -> _Keyed:
        record = AuditRecord(
            id=row.id,
            at=row.created_at,
            service=self.service,
            actor=row.actor,
            action=row.action,
            target=row.target,
            outcome=AuditOutcome(row.outcome),
            client_ip=row.client_ip,
            request_id=row.request_id,
            details=row.details,
        )
        return _Keyed(row.created_at, row.id, record)

    async def page(self, uow: UnitOfWork, query: AuditQuery) -> AuditPage:
        """One page of the records `query` selects, newest first."""
        after = cursor_key(query.cursor)
        c = self.table.c
        conditions = self._conditions(query)
        if after is not None:
            conditions.append(sa.tuple_(c.created_at, c.id) < sa.tuple_(after.created_at, after.id))

        async def fetch(n: int) -> list[_Keyed]:
            statement = (
                sa.select(self.table)
                .where(*conditions)
                .order_by(c.created_at.desc(), c.id.desc())
                .limit(n)
            )
            return [self._of(row) for row in await uow.session.execute(statement)]

        async with uow:
            page = await keyset_page(fetch, limit=query.capped_limit())
        return AuditPage(items=[kept.record for kept in page.rows], next_cursor=page.next_cursor)


def audit_expiry(trail: AuditTrail, settings: WithAudit) -> Expiry:
    """Records older than `AUDIT_RETENTION_DAYS`, for the service's retention purge."""
    return Expiry(
        trail.table,
        age=trail.table.c.created_at,
        keep=timedelta(days=settings.audit_retention_days),
    )


Admin = Callable[..., Awaitable[Principal]]


def audit_router(trail: AuditTrail, *, admin: Admin = admin_principal) -> APIRouter:
    """`GET /v1/admin/audit`: the service's own trail, to admins only (`admin` is the
    dependency that proves the caller is one)."""
    router = APIRouter(tags=["admin"])

    @router.get(
        "/v1/admin/audit",
        responses={
            401: {"description": "No valid bearer token."},
            403: {"description": "The caller is not an admin."},
        },
    )
    async def read_audit_trail(
        request: Request,
        _: Annotated[Principal, Depends(admin)],
        query: Annotated[AuditQuery, Query()],
    ) -> AuditPage:
        """The audit trail, newest first; each filter narrows it (`since` inclusive, `until`
        exclusive); a `limit` above the maximum page size is capped."""
        return await trail.page(UnitOfWork(request.app.state.sessions), query)

    return router
