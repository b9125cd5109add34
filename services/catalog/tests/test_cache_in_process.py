"""The in-process layer in front of Redis: hot products without a round trip, never older than
its TTL, dropped at once by this process's own writes."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from catalog.cache import ProductCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _cached(cache: ProductCache, redis: Redis, product_id: uuid.UUID, doc: bytes) -> None:
    await redis.set(cache.product_key(product_id), doc, ex=60)


async def test_a_product_read_from_redis_is_served_from_memory_until_its_local_ttl(
    redis: Redis, redis_prefix: str
) -> None:
    clock = Clock()
    cache = ProductCache(
        redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5, local_ttl_seconds=1.0,
        clock=clock,
    )  # fmt: skip
    product_id = uuid.uuid4()
    await _cached(cache, redis, product_id, b'{"v": 1}')
    assert (await cache.read_product(product_id)).value == b'{"v": 1}'

    await _cached(cache, redis, product_id, b'{"v": 2}')  # another replica wrote it
    clock.now += 0.9
    assert (await cache.read_product(product_id)).value == b'{"v": 1}'  # no round trip
    clock.now += 0.2
    assert (await cache.read_product(product_id)).value == b'{"v": 2}'  # expired: Redis again


async def test_this_process_invalidating_a_product_drops_its_copy_at_once(
    redis: Redis, redis_prefix: str
) -> None:
    cache = ProductCache(
        redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5, local_ttl_seconds=60
    )
    product_id = uuid.uuid4()
    await _cached(cache, redis, product_id, b'{"v": 1}')
    await cache.read_product(product_id)

    await cache.invalidate(product_id)

    read = await cache.read_product(product_id)
    assert read.value is None  # a miss: loaded from Postgres and filled again
    await cache.fill(read, b'{"v": 2}')
    assert (await cache.read_product(product_id)).value == b'{"v": 2}'


async def test_a_read_that_began_before_an_invalidation_keeps_nothing_in_memory(
    redis: Redis, redis_prefix: str, monkeypatch: Any
) -> None:
    cache = ProductCache(
        redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5, local_ttl_seconds=60
    )
    product_id = uuid.uuid4()
    await _cached(cache, redis, product_id, b'{"stale": true}')
    mget = redis.mget

    async def write_lands_meanwhile(*args: Any, **kwargs: Any) -> Any:
        answer = await mget(*args, **kwargs)  # the reader got the old document ...
        monkeypatch.setattr(redis, "mget", mget)
        await cache.invalidate(product_id)  # ... as a writer in this process invalidated it
        return answer

    monkeypatch.setattr(redis, "mget", write_lands_meanwhile)
    assert (await cache.read_product(product_id)).value == b'{"stale": true}'

    assert (await cache.read_product(product_id)).value is None  # not kept: asked Redis again


async def test_a_local_ttl_of_zero_keeps_nothing_in_memory(redis: Redis, redis_prefix: str) -> None:
    cache = ProductCache(redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5)
    product_id = uuid.uuid4()
    await _cached(cache, redis, product_id, b'{"v": 1}')
    await cache.read_product(product_id)
    await _cached(cache, redis, product_id, b'{"v": 2}')
    assert (await cache.read_product(product_id)).value == b'{"v": 2}'
