"""Orders and idempotency keys in Postgres.

State changes of an existing order go through :meth:`OrderRepository.lock` (`SELECT ... FOR
UPDATE`), so a customer's cancel and catalog's answer racing for the same order are serialised:
the second sees the first one's outcome.

Every order takes these statements (placing it, then catalog's answer), so they are sent to the
driver directly (`chassis.sql`), each one round trip: an order is read with its items in one
query, and written with its items in one statement.

The worker's reads of every order (`OrderRepository.page`: exports, reconciliation) walk keyset
pages of up to a thousand orders: one statement for the page's orders (`page_statement`, on an
index in its sort order: `ix_orders_user_id_created_at_id` for a customer's,
`ix_orders_created_at_id` for all by creation, the primary key by id) and one for all their
lines.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from chassis.db import Repository
from chassis.pagination import PageKey
from chassis.sql import qualified, sql
from orders.models import TRANSITIONS, IdempotencyKey, OrderItem, OrderStatus
from orders.models import Order as OrderRow

_ORDERS = qualified(OrderRow.__table__)  # type: ignore[arg-type]
_ITEMS = qualified(OrderItem.__table__)  # type: ignore[arg-type]
_KEYS = qualified(IdempotencyKey.__table__)  # type: ignore[arg-type]

# An order with its items (in the order they were placed) as three parallel arrays.
_SELECT = f"""
SELECT o.id, o.user_id, o.status, o.total_cents, o.currency, o.reason, o.created_at,
       o.updated_at, i.product_ids, i.quantities, i.unit_prices
FROM {_ORDERS} o
CROSS JOIN LATERAL (
  SELECT array_agg(product_id ORDER BY position) AS product_ids,
         array_agg(quantity ORDER BY position) AS quantities,
         array_agg(unit_price_cents ORDER BY position) AS unit_prices
  FROM {_ITEMS} WHERE order_id = o.id
) i
"""  # noqa: S608 - table names from the models, values as parameters
_GET = _SELECT + "WHERE o.id = $1 AND o.user_id = $2"
_LOCK = _SELECT + "WHERE o.id = $1 FOR UPDATE OF o"
_LOCK_OWNED = _SELECT + "WHERE o.id = $1 AND o.user_id = $2 FOR UPDATE OF o"
_LOCK_OVERDUE = (
    _SELECT
    + """WHERE o.status = 'pending' AND o.created_at < now() - $1::interval
ORDER BY o.created_at LIMIT $2
FOR UPDATE OF o SKIP LOCKED"""
)
_PAGE = _SELECT + "WHERE o.user_id = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
_PAGE_AFTER = (
    _SELECT
    + """WHERE o.user_id = $1 AND (o.created_at, o.id) < ($3, $4)
ORDER BY o.created_at DESC, o.id DESC LIMIT $2"""
)
_PAGE_COLUMNS = """
SELECT id, user_id, status, total_cents, currency, reason, created_at, updated_at
"""
# The lines of a page's orders, by the orders' ids: one probe of the items' primary key per
# order (the aggregate keeps Postgres from turning it into a scan of every line).
LINES_OF = f"""
SELECT page.id, i.product_ids, i.quantities, i.unit_prices
FROM unnest($1::uuid[]) AS page(id)
CROSS JOIN LATERAL (
  SELECT array_agg(product_id ORDER BY position) AS product_ids,
         array_agg(quantity ORDER BY position) AS quantities,
         array_agg(unit_price_cents ORDER BY position) AS unit_prices
  FROM {_ITEMS} WHERE order_id = page.id
) i
"""  # noqa: S608
_INSERT = f"""
WITH placed AS (
  INSERT INTO {_ORDERS} (id, user_id, status, total_cents, currency)
  VALUES ($1, $2, 'pending', $3, $4)
  RETURNING created_at, updated_at
), lines AS (
  INSERT INTO {_ITEMS} (order_id, product_id, position, quantity, unit_price_cents)
  SELECT $1, line.product_id, (line.n - 1)::smallint, line.quantity, line.unit_price_cents
  FROM unnest($5::uuid[], $6::int[], $7::bigint[])
    WITH ORDINALITY AS line(product_id, quantity, unit_price_cents, n)
)
SELECT created_at, updated_at FROM placed
"""  # noqa: S608
_SET_STATUS = f"""
UPDATE {_ORDERS} SET status = $2, reason = $3, updated_at = now() WHERE id = $1
RETURNING updated_at
"""  # noqa: S608
_FIND_KEY = f"""
SELECT request_hash, response_status, response_body FROM {_KEYS}
WHERE user_id = $1 AND key = $2 AND created_at > now() - $3::interval
"""  # noqa: S608
# A live key is left alone (the caller loses the race); the condition is re-read after waiting
# for a concurrent writer, so two requests cannot both take an expired key over.
_RECORD_KEY = f"""
INSERT INTO {_KEYS} (user_id, key, request_hash, order_id, response_status, response_body)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, key) DO UPDATE SET
  request_hash = excluded.request_hash, order_id = excluded.order_id,
  response_status = excluded.response_status, response_body = excluded.response_body,
  created_at = now()
WHERE {_KEYS}.created_at <= now() - $7::interval
RETURNING user_id
"""  # noqa: S608


# The sort orders of the internal read: by creation (exports), by id (merge joins).
OrderBy = Literal["created", "id"]


@dataclass(frozen=True, slots=True)
class IdKey:
    """Where a page of orders sorted by id ends (`chassis.pagination` sort key)."""

    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Selection:
    """Which orders a read covers: one customer's or everyone's, created in [since, until)."""

    user_id: uuid.UUID | None = None
    created_since: datetime | None = None
    created_until: datetime | None = None


def page_statement(
    selection: Selection, *, order_by: OrderBy, after: PageKey | IdKey | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement (and its arguments) of one keyset page of orders, without their lines."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if selection.user_id is not None:
        conditions.append(f"user_id = {arg(selection.user_id)}")
    if selection.created_since is not None:
        conditions.append(f"created_at >= {arg(selection.created_since)}")
    if selection.created_until is not None:
        conditions.append(f"created_at < {arg(selection.created_until)}")
    if order_by == "created":
        if isinstance(after, PageKey):
            conditions.append(f"(created_at, id) > ({arg(after.created_at)}, {arg(after.id)})")
        sort = "created_at, id"
    else:
        if isinstance(after, IdKey):
            conditions.append(f"id > {arg(after.id)}")
        sort = "id"
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    statement = f"{_PAGE_COLUMNS}FROM {_ORDERS} {where} ORDER BY {sort} LIMIT {arg(limit)}"
    return statement, args


class IllegalTransitionError(RuntimeError):
    """A status change the order's life does not allow: a bug, never a client's mistake."""


@dataclass(frozen=True, slots=True)
class Line:
    product_id: uuid.UUID
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class Order:
    """An order as the use cases and the saga see it (the response shape reads from it)."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total_cents: int
    currency: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    items: list[Line]

    def can_become(self, status: OrderStatus) -> bool:
        """Whether the order's life allows moving to `status` from where it is now."""
        return status in TRANSITIONS[OrderStatus(self.status)]

    @property
    def is_over(self) -> bool:
        """Rejected or cancelled: nothing will happen to the order any more."""
        return not TRANSITIONS[OrderStatus(self.status)]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Order:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            status=row["status"],
            total_cents=row["total_cents"],
            currency=row["currency"],
            reason=row["reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            items=_lines(row),
        )


def _lines(row: asyncpg.Record) -> list[Line]:
    """An order's lines from the three parallel arrays of its row (NULL when it has none)."""
    lines = zip(
        row["product_ids"] or (), row["quantities"] or (), row["unit_prices"] or (), strict=True
    )
    return [Line(p, q, u) for p, q, u in lines]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """The first response to `(user, Idempotency-Key)` while the key lives."""

    request_hash: str
    response_status: int
    response_body: dict[str, Any]


class OrderRepository(Repository):
    async def add(
        self,
        *,
        order_id: uuid.UUID,
        user_id: uuid.UUID,
        lines: Sequence[Line],
        currency: str,
    ) -> Order:
        """A pending order of these lines; its timestamps are the database's."""
        total = sum(line.quantity * line.unit_price_cents for line in lines)
        row = await (await sql(self._session)).fetchrow(
            _INSERT,
            order_id,
            user_id,
            total,
            currency,
            [line.product_id for line in lines],
            [line.quantity for line in lines],
            [line.unit_price_cents for line in lines],
        )
        assert row is not None
        return Order(
            id=order_id,
            user_id=user_id,
            status=OrderStatus.PENDING.value,
            total_cents=total,
            currency=currency,
            reason=None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            items=list(lines),
        )

    async def get_for(self, order_id: uuid.UUID, user_id: uuid.UUID) -> Order | None:
        """The order if it belongs to the user (someone else's reads as absent)."""
        row = await (await sql(self._session, begin=False)).fetchrow(_GET, order_id, user_id)
        return None if row is None else Order.from_row(row)

    async def lock(self, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None) -> Order | None:
        """The order, row-locked until the transaction ends; `user_id` restricts to its owner."""
        statements = await sql(self._session)
        if user_id is None:
            row = await statements.fetchrow(_LOCK, order_id)
        else:
            row = await statements.fetchrow(_LOCK_OWNED, order_id, user_id)
        return None if row is None else Order.from_row(row)

    async def lock_overdue(self, *, older_than_seconds: float, limit: int) -> list[Order]:
        """Pending orders placed longer ago than that, locked; rows another replica is already
        handling are skipped, not waited for."""
        rows = await (await sql(self._session)).fetch(
            _LOCK_OVERDUE, timedelta(seconds=older_than_seconds), limit
        )
        return [Order.from_row(row) for row in rows]

    async def page_for(
        self, user_id: uuid.UUID, *, after: PageKey | None, limit: int
    ) -> list[Order]:
        """Up to `limit` of the user's orders, newest first, strictly after `after`."""
        statements = await sql(self._session, begin=False)
        if after is None:
            rows = await statements.fetch(_PAGE, user_id, limit)
        else:
            rows = await statements.fetch(_PAGE_AFTER, user_id, limit, after.created_at, after.id)
        return [Order.from_row(row) for row in rows]

    async def page(
        self,
        selection: Selection,
        *,
        order_by: OrderBy,
        after: PageKey | IdKey | None,
        limit: int,
    ) -> list[Order]:
        """Up to `limit` of the selected orders with their lines, sorted by (created_at, id) or
        by id, strictly after `after`: two statements, the orders' and all their lines'."""
        statements = await sql(self._session, begin=False)
        statement, args = page_statement(selection, order_by=order_by, after=after, limit=limit)
        rows = await statements.fetch(statement, *args)
        if not rows:
            return []
        lines = {
            line["id"]: _lines(line)
            for line in await statements.fetch(LINES_OF, [row["id"] for row in rows])
        }
        return [
            Order(
                id=row["id"],
                user_id=row["user_id"],
                status=row["status"],
                total_cents=row["total_cents"],
                currency=row["currency"],
                reason=row["reason"],
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                items=lines[row["id"]],
            )
            for row in rows
        ]

    async def set_status(self, order: Order, status: OrderStatus, reason: str | None) -> None:
        """Move a locked order to `status`; its `updated_at` becomes the database's now. A
        change its life does not allow (`orders.models.TRANSITIONS`) is refused."""
        if not order.can_become(status):
            msg = f"order {order.id} cannot go from {order.status} to {status.value}"
            raise IllegalTransitionError(msg)
        updated_at = await (await sql(self._session)).fetchval(
            _SET_STATUS, order.id, status.value, reason
        )
        order.status, order.reason, order.updated_at = status.value, reason, updated_at


class IdempotencyRepository(Repository):
    """Keys live for a TTL: an expired key reads as absent, and recording the key again takes
    its place, whether or not the purge deleted it yet."""

    async def find(self, user_id: uuid.UUID, key: str, *, ttl: timedelta) -> StoredKey | None:
        row = await (await sql(self._session, begin=False)).fetchrow(_FIND_KEY, user_id, key, ttl)
        return None if row is None else StoredKey(*row)

    async def record(
        self,
        *,
        user_id: uuid.UUID,
        key: str,
        request_hash: str,
        order_id: uuid.UUID,
        status: int,
        body: str,
        ttl: timedelta,
    ) -> bool:
        """Store the response (JSON text) to the key; False if another request stored one first
        (the unique key decides; a concurrent insert waits for the other transaction's outcome).
        An expired key is overwritten, so it starts a TTL of its own."""
        recorded = await (await sql(self._session)).fetchval(
            _RECORD_KEY, user_id, key, request_hash, order_id, status, body, ttl
        )
        return recorded is not None
