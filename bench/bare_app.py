"""The baseline: a bare FastAPI JSON endpoint (no middleware, no I/O), served like the services
(uvicorn, one process, uvloop and httptools), answering a product-sized document."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

PRODUCT = {
    "id": "2df74211-8805-4651-8550-e8a437e6344f",
    "sku": "FLEET-0001",
    "name": "Insulated Water Bottle (500 ml)",
    "description": "Double-walled stainless steel; keeps drinks cold for 24 hours.",
    "price_cents": 2490,
    "currency": "EUR",
    "stock": 100,
}


@app.get("/v1/products/{product_id}")
async def product(product_id: str) -> dict[str, object]:
    return {**PRODUCT, "id": product_id}
