"""Each path prefix reaches its own upstream with method, path, query and body intact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

Bearer = Callable[..., dict[str, str]]


@pytest.mark.parametrize(
    ("method", "path", "upstream"),
    [
        ("POST", "/v1/auth/register", "auth"),
        ("GET", "/v1/auth/jwks", "auth"),
        ("GET", "/v1/products", "catalog"),
        ("PATCH", "/v1/products/3f1c", "catalog"),
        ("POST", "/v1/orders", "orders"),
        ("POST", "/v1/orders/9a/cancel", "orders"),
        ("POST", "/v1/webhooks/subscriptions", "worker"),
        ("POST", "/v1/orders/exports", "worker"),
        ("GET", "/v1/orders/exports/5d2e", "worker"),
        ("GET", "/v1/orders/exportsx", "orders"),
        ("GET", "/v1/admin/reconciliations", "worker"),
    ],
)
async def test_each_prefix_is_forwarded_to_its_upstream(
    gateway: httpx.AsyncClient, bearer: Bearer, method: str, path: str, upstream: str
) -> None:
    response = await gateway.request(method, path, headers=bearer())
    assert response.status_code == 200
    assert response.headers["x-upstream"] == upstream
    assert response.json()["method"] == method
    assert response.json()["raw_path"] == path


async def test_method_path_query_and_body_arrive_unchanged(
    gateway: httpx.AsyncClient, bearer: Bearer
) -> None:
    body = b'{"items": [{"product_id": "p-1", "quantity": 2}], "note": "caf\xc3\xa9"}'
    response = await gateway.put(
        "/v1/orders/a%2Fb/items?limit=10&cursor=x%3D%3D&tag=1&tag=2",
        content=body,
        headers={**bearer(), "Content-Type": "application/json", "Idempotency-Key": "k-1"},
    )
    seen = response.json()
    assert seen["upstream"] == "orders"
    assert seen["method"] == "PUT"
    assert seen["raw_path"] == "/v1/orders/a%2Fb/items"
    assert seen["query"] == "limit=10&cursor=x%3D%3D&tag=1&tag=2"
    assert seen["body"].encode() == body
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["idempotency-key"] == "k-1"
    assert seen["headers"]["content-length"] == str(len(body))


async def test_upstream_status_and_headers_are_relayed(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/products/missing?status=404")
    assert response.status_code == 404
    assert response.headers["x-upstream"] == "catalog"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert int(response.headers["content-length"]) == len(response.content)


async def test_head_relays_headers_without_body(gateway: httpx.AsyncClient) -> None:
    head = await gateway.head("/v1/products")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-upstream"] == "catalog"
    # The length of the document a GET would return, as the upstream declared it.
    assert int(head.headers["content-length"]) > 100


@pytest.mark.parametrize(
    "path", ["/", "/v1", "/v1/unknown", "/v1/auth", "/v1/webhooks", "/v1/productsx", "/v2/orders"]
)
async def test_unknown_path_is_404_problem(gateway: httpx.AsyncClient, path: str) -> None:
    response = await gateway.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_oversize_body_is_413_problem_and_never_forwarded(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    response = await gateway.post(
        "/v1/auth/register", content=b"x" * (1024 * 1024 + 1), headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert request_id not in upstreams["auth"].request_ids()


async def test_oversize_chunked_body_without_length_is_413_problem(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"y" * 65536

    request_id = uuid.uuid4().hex
    response = await gateway.post(
        "/v1/auth/register", content=chunks(), headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert request_id not in upstreams["auth"].request_ids()


async def test_body_at_the_limit_is_forwarded(gateway: httpx.AsyncClient) -> None:
    body = b"z" * (1024 * 1024)
    response = await gateway.post("/v1/auth/register", content=body)
    assert response.status_code == 200
    assert len(response.json()["body"]) == len(body)


async def test_request_metrics_are_labelled_by_route_template(gateway: httpx.AsyncClient) -> None:
    def count() -> float:
        labels = {"method": "GET", "route": "/v1/products/{rest:path}", "status": "200"}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = count()
    await gateway.get(f"/v1/products/{uuid.uuid4()}")
    await gateway.get(f"/v1/products/{uuid.uuid4()}")
    assert count() == before + 2


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("GET", "/v1/products", "/v1/products"),
        ("POST", "/v1/orders", "/v1/orders"),
        ("GET", "/v1/orders/9a", "/v1/orders/{rest:path}"),
        ("GET", "/v1/auth/jwks", "/v1/auth/{rest:path}"),
        ("POST", "/v1/webhooks/subscriptions", "/v1/webhooks/{rest:path}"),
    ],
)
async def test_each_proxied_route_labels_its_metrics_with_its_template(
    gateway: httpx.AsyncClient, bearer: Bearer, method: str, path: str, template: str
) -> None:
    # Dashboards and SLOs select these values (e.g. `route="/v1/orders"`).
    def count() -> float:
        labels = {"method": method, "route": template, "status": "200"}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = count()
    response = await gateway.request(method, path, headers=bearer())
    assert response.status_code == 200
    assert count() == before + 1


async def test_unproxied_method_is_405_problem_naming_the_allowed_ones(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any]
) -> None:
    labels = {"method": "TRACE", "route": "/v1/products", "status": "405"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    request_id = uuid.uuid4().hex
    response = await gateway.request("TRACE", "/v1/products", headers={"X-Request-ID": request_id})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert {"GET", "POST", "DELETE"} <= set(response.headers["allow"].replace(" ", "").split(","))
    assert request_id not in upstreams["catalog"].request_ids()
    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 1
