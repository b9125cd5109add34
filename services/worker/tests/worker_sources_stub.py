"""Small real orders and catalog for the worker's sources: their internal routes over HTTP on
loopback, keyset pages with cursors of their own, each request's service token checked against
the test issuer's keys (401 with the service realm, as the services answer, when it is not a
token for this callee) and kept with the query it came with.

They stand in for the orders and catalog services (which the worker must never import) and are
served by uvicorn in a thread of their own, so the sources reach them through the real HTTP
client, with the service tokens the real `ServiceTokens` fetched from the test issuer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chassis.service_tokens import SERVICE_REALM, SERVICE_TOKEN_HEADER
from fleetctl.testing import serve_in_thread
from fleetctl.tokens import TestTokenIssuer


@dataclass(frozen=True)
class Seen:
    """One request a stub answered: its query and the claims of its service token."""

    path: str
    query: dict[str, str]
    caller: str
    audience: str
    token: str


@dataclass
class SourcesStub:
    issuer: TestTokenIssuer
    orders: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    # Statuses answered (with `Retry-After: 0`) before the next requests are served, in turn.
    failures: list[int] = field(default_factory=list)
    # Seconds the next requests' answers are held back, in turn (a source slower than its bound).
    delays: list[float] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def add_order(
        self, *, user_id: uuid.UUID | None = None, created_at: datetime | None = None
    ) -> dict[str, Any]:
        moment = (created_at or datetime(2026, 3, 1, tzinfo=UTC)).isoformat()
        order = {
            "id": str(uuid.uuid4()),
            "user_id": str(user_id or uuid.uuid4()),
            "status": "confirmed",
            "total_cents": 2500,
            "currency": "EUR",
            "reason": None,
            "created_at": moment,
            "updated_at": moment,
            "items": [{"product_id": str(uuid.uuid4()), "quantity": 2, "unit_price_cents": 1250}],
            "added_later": "a field the worker does not know yet",
        }
        self.orders.append(order)
        return order

    def add_reservation(self, *, released: bool = False) -> dict[str, Any]:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        reservation = {
            "order_id": str(uuid.uuid4()),
            "product_id": str(uuid.uuid4()),
            "quantity": 3,
            "status": "released" if released else "reserved",
            "created_at": at.isoformat(),
            "released_at": (at + timedelta(minutes=5)).isoformat() if released else None,
        }
        self.reservations.append(reservation)
        return reservation

    def served(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/v1/orders")
        async def read_orders(request: Request) -> JSONResponse:
            return await self._answer(request, "orders", self._orders(dict(request.query_params)))

        @app.get("/internal/v1/reservations")
        async def read_reservations(request: Request) -> JSONResponse:
            rows = sorted(self.reservations, key=lambda r: (r["order_id"], r["product_id"]))
            return await self._answer(request, "catalog", rows)

        return app

    def _orders(self, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = [
            order
            for order in self.orders
            if query.get("user_id") in (None, order["user_id"])
            and query.get("created_since", "") <= order["created_at"]
            and order["created_at"] < query.get("created_until", "~")
        ]
        if query.get("order_by") == "id":
            return sorted(rows, key=lambda order: order["id"])
        return sorted(rows, key=lambda order: (order["created_at"], order["id"]))

    async def _answer(
        self, request: Request, audience: str, rows: list[dict[str, Any]]
    ) -> JSONResponse:
        scheme, _, token = request.headers.get(SERVICE_TOKEN_HEADER, "").partition(" ")
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWKSet.from_dict(self.issuer.jwks()).keys[-1],
                algorithms=["EdDSA"],
                audience=audience,
            )
        except jwt.PyJWTError:
            claims = {}
        if scheme != "Bearer" or claims.get("typ") != "service":
            return JSONResponse(
                {"status": 401, "title": "Invalid or missing service token"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{SERVICE_REALM}"'},
            )
        query = dict(request.query_params)
        self.seen.append(Seen(request.url.path, query, claims["sub"], audience, token))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        if self.failures:
            status = self.failures.pop(0)
            return JSONResponse(
                {"status": status, "title": "Not now"},
                status_code=status,
                headers={"Retry-After": "0"},
            )
        # The cursor is the stub's own: how many rows the pages before it held.
        start = int(query.get("after", "cursor-0").removeprefix("cursor-"))
        limit = int(query["limit"])
        end = start + limit
        page = rows[start:end]
        next_cursor = f"cursor-{end}" if end < len(rows) else None
        return JSONResponse({"items": page, "next_cursor": next_cursor})


@contextmanager
def running_sources(issuer: TestTokenIssuer) -> Iterator[SourcesStub]:
    """A stub serving both routes on a free loopback port while the block runs."""
    stub = SourcesStub(issuer)
    with serve_in_thread(stub.app(), lifespan="auto") as url:
        stub.url = url
        yield stub
