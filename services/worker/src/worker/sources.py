"""The sources of truth the worker reads: every order (orders) and every reservation (catalog).

Exports and the reconciliation read what orders and catalog own over their internal, service-only
routes, `GET /internal/v1/orders` and `GET /internal/v1/reservations`, on the services' own ports
(`ORDERS_URL`, `CATALOG_URL`; never through the gateway), each request carrying the worker's
service token for that callee (`chassis.service_tokens.ServiceAuth`; auth issues it to the
worker for orders and catalog only, `auth.service_clients.CALLEES`).

Both are walked in keyset pages (`chassis.pagination` cursors, opaque here) and yielded one
record at a time, so a walk of 100,000 orders holds one page in memory whatever its length:

- `OrdersSource.orders` by `(created_at, id)` (exports: a customer's history, or every order
  created in `[created_since, created_until)`), or by `id` (`order_by="id"`, the reconciliation's
  merge join);
- `ReservationsSource.reservations` by `(order_id, product_id)`, the same order of order ids.

Every page read is bounded (`ORDERS_TIMEOUT_SECONDS`, `CATALOG_TIMEOUT_SECONDS`: connecting,
and the whole answer). A page read is idempotent, so a transport failure, a timeout or an
answer saying the service is busy or down (429, 502, 503, 504) is retried a few times after a
jittered backoff (or the `Retry-After` asked, within bounds) before the walk fails with
:class:`SourceUnavailableError`; a refusal (401, 403, 422, ...) fails it at once with
:class:`SourceRefusedError`, retrying would not change it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import datetime
from typing import ClassVar, Generic, Literal, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from chassis.clients import http_client
from chassis.logging import get_logger
from chassis.service_tokens import ServiceAuth, service_tokens
from worker.backoff import full_jitter, retry_after_seconds
from worker.settings import WorkerSettings

log = get_logger(__name__)

ORDERS_PATH = "/internal/v1/orders"
RESERVATIONS_PATH = "/internal/v1/reservations"
# The page sizes the internal routes serve.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 500
# Answers that say "not now": worth another try of the same page.
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
# At most this long between two tries of a page, whatever `Retry-After` asks.
MAX_RETRY_DELAY_SECONDS = 10.0


class _Record(BaseModel):
    # Fields a source adds later are ignored; records are values.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderLine(_Record):
    product_id: UUID
    quantity: int
    unit_price_cents: int


class OrderRecord(_Record):
    id: UUID
    user_id: UUID
    status: str
    total_cents: int
    currency: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    items: list[OrderLine]


class ReservationRecord(_Record):
    order_id: UUID
    product_id: UUID
    quantity: int
    status: str
    created_at: datetime
    released_at: datetime | None


RecordT = TypeVar("RecordT", bound=_Record)


class _Page(BaseModel, Generic[RecordT]):
    model_config = ConfigDict(extra="ignore")

    items: list[RecordT]
    next_cursor: str | None


class SourceError(Exception):
    """A source could not be read to the end; the walk stops here."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class SourceUnavailableError(SourceError):
    """The source did not answer a page after every try (down, overloaded, unreachable, or auth
    gave no token): the walk may be run again later."""


class SourceRefusedError(SourceError):
    """The source refused the request (401, 403, 422, ...) or answered something that is not a
    page: a configuration or contract fault that another try would not mend."""


class _Source:
    """Keyset pages of one internal route, read with retries."""

    # The service read, as errors name it.
    name: ClassVar[str]

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout: float | None = None,
        retries: int = 3,
        retry_base_seconds: float = 0.2,
    ) -> None:
        self._client = client
        self._name = self.name
        self._timeout = timeout
        self._retries = retries
        self._retry_base_seconds = retry_base_seconds

    async def _walk(
        self, path: str, params: Mapping[str, str], page: type[_Page[RecordT]]
    ) -> AsyncGenerator[RecordT]:
        query = dict(params)
        while True:
            body = await self._get(path, query)
            try:
                current = page.model_validate_json(body)
            except ValidationError as exc:
                raise SourceRefusedError(self._name, f"not a page of {path}: {exc}") from None
            for record in current.items:
                yield record
            if current.next_cursor is None:
                return
            query["after"] = current.next_cursor

    async def _get(self, path: str, query: Mapping[str, str]) -> bytes:
        """The body of a 200 answer to `GET path?query`, tried up to `retries` times more."""
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(self._timeout):  # the whole answer, not each read
                    response = await self._client.get(path, params=query)
            except (httpx.HTTPError, TimeoutError) as exc:  # transport, no service token
                failure = type(exc).__name__
            else:
                if response.status_code == httpx.codes.OK:
                    return response.content
                if response.status_code not in RETRIED_STATUSES:
                    raise SourceRefusedError(self._name, _refusal(response))
                failure = f"status {response.status_code}"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if attempt > self._retries:
                detail = f"{failure} after {attempt} tries of {path}"
                raise SourceUnavailableError(self._name, detail)
            if retry_after is None:
                retry_after = full_jitter(
                    attempt, base=self._retry_base_seconds, cap=MAX_RETRY_DELAY_SECONDS
                )
            log.warning("source_retry", source=self._name, attempt=attempt, error=failure)
            await asyncio.sleep(min(retry_after, MAX_RETRY_DELAY_SECONDS))


def _refusal(response: httpx.Response) -> str:
    """What a refusing answer says: its status and, for a problem document, its title and
    detail."""
    said = f"status {response.status_code}"
    with contextlib.suppress(ValueError):
        problem = response.json()
        if isinstance(problem, dict):
            parts = [str(problem[key]) for key in ("title", "detail") if problem.get(key)]
            said = f"{said}: {': '.join(parts)}" if parts else said
    return said


def _limit(page_size: int) -> dict[str, str]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        msg = f"page_size must be within 1..{MAX_PAGE_SIZE}, not {page_size}"
        raise ValueError(msg)
    return {"limit": str(page_size)}


def _instant(name: str, moment: datetime | None) -> dict[str, str]:
    if moment is None:
        return {}
    if moment.tzinfo is None:
        msg = f"{name} needs a time zone: which instant is {moment.isoformat()}?"
        raise ValueError(msg)
    return {name: moment.isoformat()}


class OrdersSource(_Source):
    """Orders, as orders' `GET /internal/v1/orders` serves them (a client whose base URL is
    `ORDERS_URL` and whose auth is `ServiceAuth(tokens, "orders")`)."""

    name = "orders"

    def orders(
        self,
        *,
        user_id: UUID | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        order_by: Literal["created", "id"] = "created",
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncGenerator[OrderRecord]:
        """Every selected order with its lines, one at a time: a customer's (`user_id`) or
        everyone's, created in [`created_since`, `created_until`) (aware datetimes), sorted by
        (created_at, id) or by id."""
        params = {
            "order_by": order_by,
            **_limit(page_size),
            **({"user_id": str(user_id)} if user_id is not None else {}),
            **_instant("created_since", created_since),
            **_instant("created_until", created_until),
        }
        return self._walk(ORDERS_PATH, params, _Page[OrderRecord])


class ReservationsSource(_Source):
    """Catalog's reservations, as its `GET /internal/v1/reservations` serves them (a client whose
    base URL is `CATALOG_URL` and whose auth is `ServiceAuth(tokens, "catalog")`)."""

    name = "catalog"

    def reservations(
        self, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncGenerator[ReservationRecord]:
        """Every reservation, reserved and released, one at a time, sorted by (order_id,
        product_id)."""
        return self._walk(RESERVATIONS_PATH, _limit(page_size), _Page[ReservationRecord])


@contextlib.asynccontextmanager
async def sources(
    settings: WorkerSettings,
) -> AsyncIterator[tuple[OrdersSource, ReservationsSource]]:
    """The worker's two sources for as long as the block runs: a pooled client for each callee
    (bounded connect and read, the worker's service token for it) over one set of service
    tokens from auth; all closed on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        tokens = await stack.enter_async_context(service_tokens(settings))
        orders = http_client(
            base_url=settings.orders_url,
            connect_timeout=settings.orders_timeout_seconds,
            read_timeout=settings.orders_timeout_seconds,
            max_connections=4,
            max_keepalive=4,
            auth=ServiceAuth(tokens, "orders"),
        )
        stack.push_async_callback(orders.aclose)
        catalog = http_client(
            base_url=settings.catalog_url,
            connect_timeout=settings.catalog_timeout_seconds,
            read_timeout=settings.catalog_timeout_seconds,
            max_connections=4,
            max_keepalive=4,
            auth=ServiceAuth(tokens, "catalog"),
        )
        stack.push_async_callback(catalog.aclose)
        yield (
            OrdersSource(orders, timeout=settings.orders_timeout_seconds),
            ReservationsSource(catalog, timeout=settings.catalog_timeout_seconds),
        )
