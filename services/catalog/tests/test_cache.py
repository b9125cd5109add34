"""Cache-aside in Redis: reads come from it, writes invalidate it, and losing it is harmless."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from catalog.cache import ProductCache

Count = Callable[[str], float]


async def test_product_read_is_filled_into_redis_and_then_served_from_it(
    client: httpx.AsyncClient,
    create_product: Callable[..., Any],
    redis: Redis,
    redis_prefix: str,
    cache_count: Count,
) -> None:
    product = await create_product()
    key = f"{redis_prefix}product:{product['id']}"
    hits, misses = cache_count("hit"), cache_count("miss")

    first = await client.get(f"/v1/products/{product['id']}")
    assert cache_count("miss") == misses + 1
    assert json.loads(await redis.get(key) or b"") == product
    assert 0 < await redis.ttl(key) <= 60

    # Prove the second read comes from Redis: change the cached copy behind the service's back.
    await redis.set(key, json.dumps({**product, "name": "only in redis"}), ex=60)
    second = await client.get(f"/v1/products/{product['id']}")

    assert first.json() == product
    assert second.json()["name"] == "only in redis"
    assert cache_count("hit") == hits + 1


async def test_list_page_is_cached_under_the_current_generation(
    client: httpx.AsyncClient, create_product: Callable[..., Any], cache_count: Count
) -> None:
    await create_product()
    hits = cache_count("hit")

    first = await client.get("/v1/products", params={"limit": 7})
    second = await client.get("/v1/products", params={"limit": 7})

    assert first.json() == second.json()
    assert cache_count("hit") == hits + 1


async def test_patch_invalidates_the_cached_product_and_list_pages(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    create_product: Callable[..., Any],
    redis: Redis,
    redis_prefix: str,
) -> None:
    product = await create_product(price_cents=1000)
    await client.get(f"/v1/products/{product['id']}")
    # Walking the list caches every page, including the one that holds our product.
    assert (await _find_in_list(client, product["id"]))["price_cents"] == 1000
    assert await redis.exists(f"{redis_prefix}product:{product['id']}")
    generation = int(await redis.get(f"{redis_prefix}products:gen") or 0)

    patched = await client.patch(
        f"/v1/products/{product['id']}", json={"price_cents": 1999}, headers=admin_headers
    )

    assert patched.status_code == 200
    assert int(await redis.get(f"{redis_prefix}products:gen") or 0) == generation + 1
    fetched = await client.get(f"/v1/products/{product['id']}")
    assert fetched.json()["price_cents"] == 1999
    assert (await _find_in_list(client, product["id"]))["price_cents"] == 1999


async def _find_in_list(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/products", params=params)).json()
        for item in page["items"]:
            if item["id"] == product_id:
                return dict(item)
        cursor = page["next_cursor"]
        assert cursor is not None, "product missing from the list"


async def test_create_invalidates_cached_list_pages(
    client: httpx.AsyncClient, create_product: Callable[..., Any], cache_count: Count
) -> None:
    await client.get("/v1/products", params={"limit": 9})
    misses = cache_count("miss")

    await create_product()
    await client.get("/v1/products", params={"limit": 9})

    assert cache_count("miss") == misses + 1


async def test_fill_after_a_concurrent_write_is_discarded(redis: Redis, redis_prefix: str) -> None:
    cache = ProductCache(redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5)
    product_id = uuid.uuid4()

    read = await cache.read_product(product_id)  # a reader misses and loads from Postgres ...
    await cache.invalidate(product_id)  # ... while a writer commits and invalidates ...
    await cache.fill(read, b'{"stale": true}')  # ... then the reader stores what it loaded.

    assert await redis.get(cache.product_key(product_id)) is None
    fresh = await cache.read_product(product_id)
    await cache.fill(fresh, b'{"fresh": true}')
    assert await redis.get(cache.product_key(product_id)) == b'{"fresh": true}'


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


async def test_reads_and_writes_work_from_postgres_when_redis_is_down(
    make_settings: Callable[..., Any],
    run_app: Callable[..., Any],
    create_product: Callable[..., Any],
    admin_headers: dict[str, str],
    cache_count: Count,
) -> None:
    product = await create_product()
    new_product = {"sku": f"DOWN-{uuid.uuid4().hex[:8]}", "name": "Made offline", "price_cents": 1}
    errors, bypasses = cache_count("error"), cache_count("bypass")

    settings = make_settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async with run_app(settings) as degraded:
        started = time.perf_counter()
        for _ in range(10):
            got = await degraded.get(f"/v1/products/{product['id']}")
            listed = await degraded.get("/v1/products", params={"limit": 5})
            assert got.status_code == 200
            assert got.json() == product
            assert listed.status_code == 200
        elapsed = time.perf_counter() - started
        created = await degraded.post("/v1/products", json=new_product, headers=admin_headers)
        ready = await degraded.get("/readyz")

    assert elapsed < 2.0
    assert cache_count("error") - errors >= 1
    assert cache_count("bypass") - bypasses >= 18  # the cooldown skips Redis after the failure
    assert created.status_code == 201
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"].startswith("error")


async def test_a_hung_redis_costs_one_timeout_per_cooldown(
    make_settings: Callable[..., Any],
    run_app: Callable[..., Any],
    create_product: Callable[..., Any],
    silent_redis: str,
    cache_count: Count,
) -> None:
    product = await create_product()
    errors, bypasses = cache_count("error"), cache_count("bypass")

    settings = make_settings(redis_url=silent_redis, redis_timeout_seconds=0.2)
    async with run_app(settings) as degraded:
        started = time.perf_counter()
        responses = [await degraded.get(f"/v1/products/{product['id']}") for _ in range(20)]
        elapsed = time.perf_counter() - started

    assert all(r.status_code == 200 for r in responses)
    assert cache_count("error") - errors == 1
    assert cache_count("bypass") - bypasses == 19
    # Twenty timeouts would take 4 s; one timeout plus nineteen Postgres reads is far less.
    assert elapsed < 2.0


async def test_readiness_is_ok_with_every_dependency_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "postgres": "ok",
            "redis": "ok",
            "rabbitmq": "ok",
            "loop:outbox_relay": "ok",
            "loop:retention": "ok",
            "loop:dlq_depth": "ok",
        },
    }


async def test_readiness_fails_without_postgres(
    make_settings: Callable[..., Any], run_app: Callable[..., Any]
) -> None:
    settings = make_settings(
        database_url=f"postgresql+asyncpg://nobody:nothing@127.0.0.1:{_closed_port()}/fleet"
    )
    async with run_app(settings) as no_db:
        response = await no_db.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["postgres"] != "ok"
