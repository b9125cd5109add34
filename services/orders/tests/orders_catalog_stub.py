"""A small real catalog for the orders tests: `GET /internal/v1/products/{id}` over HTTP on
loopback, refusing a request without a service token as catalog does (401, the service realm) and
keeping the tokens it was sent.

It stands in for the catalog service (which the orders service must never import) and is served
by uvicorn in a thread of its own, so the orders app reaches it through its real HTTP client.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chassis.service_tokens import SERVICE_REALM, SERVICE_TOKEN_HEADER
from fleetctl.testing import serve_in_thread


@dataclass
class CatalogStub:
    products: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    # Seconds a product's answer is held back (to make catalog slower than the order timeout).
    delays: dict[uuid.UUID, float] = field(default_factory=dict)
    # Products answered with 404 for now (withdrawn from the catalog).
    hidden: set[uuid.UUID] = field(default_factory=set)
    # The `Fleet-Service-Authorization` tokens of the requests, in order.
    service_tokens: list[str] = field(default_factory=list)
    url: str = ""

    def add(self, *, price_cents: int = 1250, currency: str = "EUR", delay: float = 0.0) -> str:
        product_id = uuid.uuid4()
        self.products[product_id] = {
            "id": str(product_id),
            "sku": f"T-{product_id.hex[:8].upper()}",
            "name": "Test product",
            "description": "",
            "price_cents": price_cents,
            "currency": currency,
            "stock": 10,
        }
        if delay:
            self.delays[product_id] = delay
        return str(product_id)

    def set_price(self, product_id: str, price_cents: int) -> None:
        self.products[uuid.UUID(product_id)]["price_cents"] = price_cents

    def hide(self, product_id: str) -> None:
        self.hidden.add(uuid.UUID(product_id))

    def show(self, product_id: str) -> None:
        self.hidden.discard(uuid.UUID(product_id))

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/v1/products/{product_id}")
        async def get_product(product_id: uuid.UUID, request: Request) -> JSONResponse:
            scheme, _, token = request.headers.get(SERVICE_TOKEN_HEADER, "").partition(" ")
            if scheme != "Bearer" or not token:
                return JSONResponse(
                    {"status": 401, "title": "Invalid or missing service token"},
                    status_code=401,
                    headers={"WWW-Authenticate": f'Bearer realm="{SERVICE_REALM}"'},
                )
            self.service_tokens.append(token)
            await asyncio.sleep(self.delays.get(product_id, 0.0))
            product = None if product_id in self.hidden else self.products.get(product_id)
            if product is None:
                return JSONResponse({"status": 404, "title": "Not found"}, status_code=404)
            return JSONResponse(product)

        return app


class RunningCatalog:
    """The stub served by uvicorn on a free loopback port until :meth:`stop`."""

    def __init__(self, stub: CatalogStub) -> None:
        self._serving = ExitStack()
        stub.url = self._serving.enter_context(serve_in_thread(stub.app(), lifespan="auto"))

    def stop(self) -> None:
        self._serving.close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
