"""Cache-aside for product reads in Redis, built to degrade to Postgres rather than fail.

Keys (all under the service's `REDIS_KEY_PREFIX`):

- `product:{id}`: one product;
- `products:gen`: the generation of the list pages, incremented by every write;
- `products:page:{gen}:{limit}:{cursor}`: one list page of that generation, so a single `INCR`
  invalidates every cached page at once (old generations simply expire).

A read remembers the generation it saw, and its fill is a conditional `SET` that only happens if
the generation is still the same: a reader that loaded a row from Postgres just before a write
committed can never put that stale row back after the writer invalidated it.

Redis is optional: every call is bounded by the client's short timeouts and never raises. After a
failure the cache is bypassed for `cooldown_seconds`, so a dead Redis costs one timeout per
cooldown rather than one per request.

In front of Redis, each process keeps the product documents it served in memory for
`local_ttl_seconds` (`CACHE_LOCAL_TTL_SECONDS`, 1 s by default; 0 turns it off): a hot product
is then served without a round trip at all. A write or reservation in this process drops its
copies at once (and a read that started before it cannot put the old document back: the same
generation guard as Redis's, kept locally); another replica's copies expire within the local
TTL, so a product read on another replica may show a stock or price up to that old.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chassis.logging import get_logger
from chassis.metrics import initialise_labels

log = get_logger(__name__)

CACHE_REQUESTS = Counter(
    "catalog_cache_requests_total",
    "Product cache lookups by outcome (hit, miss, bypass during cooldown); error counts every "
    "failed Redis call, including fills and invalidations.",
    ["result"],
)
initialise_labels(CACHE_REQUESTS, result=("hit", "miss", "bypass", "error"))

# KEYS[1] = generation, KEYS[2] = entry; ARGV = generation seen, value, ttl in seconds.
_FILL_IF_GENERATION = """
if (redis.call('GET', KEYS[1]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _as_bytes(value: bytes | str | None) -> bytes | None:
    """The client returns bytes (no `decode_responses`); the stubs also allow str."""
    return value.encode() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class CacheRead:
    """The outcome of a lookup; pass it back to :meth:`ProductCache.fill` after a miss."""

    key: str
    value: bytes | None
    generation: bytes | None  # None: Redis was not consulted, so the entry must not be filled
    # A product read: the local generation it saw; its fill is kept in memory unless a local
    # invalidation came since.
    local_generation: int | None = None


class ProductCache:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        cooldown_seconds: float,
        local_ttl_seconds: float = 0.0,
        local_max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._bypass_until = float("-inf")
        self._fill_script = client.register_script(_FILL_IF_GENERATION)
        self._local_ttl = local_ttl_seconds
        self._local_max = local_max_entries
        self._local: dict[str, tuple[float, bytes]] = {}  # key -> (expires at, document)
        self._local_generation = 0  # bumped by every local invalidation

    def product_key(self, product_id: uuid.UUID) -> str:
        return f"{self._prefix}product:{product_id}"

    @property
    def generation_key(self) -> str:
        return f"{self._prefix}products:gen"

    def _page_key(self, generation: bytes, *, limit: int, cursor: str | None) -> str:
        return f"{self._prefix}products:page:{generation.decode()}:{limit}:{cursor or '-'}"

    async def read_product(self, product_id: uuid.UUID) -> CacheRead:
        key = self.product_key(product_id)
        held = self._local.get(key)
        if held is not None and held[0] > self._clock():
            return self._counted(CacheRead(key, held[1], None))
        if self._bypassed():
            return CacheRead(key, None, None)
        local_generation = self._local_generation
        try:
            value, generation = await self._client.mget([key, self.generation_key])
        except (RedisError, OSError) as exc:
            self._failed("read_product", exc)
            return CacheRead(key, None, None)
        document = _as_bytes(value)
        if document is not None:
            self._hold(key, document, local_generation)
        read = CacheRead(key, document, _as_bytes(generation) or b"0", local_generation)
        return self._counted(read)

    async def read_page(self, *, limit: int, cursor: str | None) -> CacheRead:
        if self._bypassed():
            return CacheRead("", None, None)
        try:
            generation = _as_bytes(await self._client.get(self.generation_key)) or b"0"
            key = self._page_key(generation, limit=limit, cursor=cursor)
            value = _as_bytes(await self._client.get(key))
        except (RedisError, OSError) as exc:
            self._failed("read_page", exc)
            return CacheRead("", None, None)
        return self._counted(CacheRead(key, value, generation))

    async def fill(self, read: CacheRead, value: bytes) -> None:
        """Store what a missed read loaded, unless a write happened since the read."""
        if read.generation is None or self._in_cooldown():
            return
        try:
            filled = await self._fill_script(
                keys=[self.generation_key, read.key], args=[read.generation, value, self._ttl]
            )
        except (RedisError, OSError) as exc:
            self._failed("fill", exc)
            return
        if filled == 1 and read.local_generation is not None:
            self._hold(read.key, value, read.local_generation)

    async def invalidate(self, product_id: uuid.UUID) -> None:
        """Forget the product and every list page; call after the write committed.

        Tried even during a cooldown: a skipped invalidation would leave a stale entry for a
        whole TTL, while writes are rare enough to afford one timeout each.
        """
        await self.invalidate_many([product_id])

    async def invalidate_many(self, product_ids: Iterable[uuid.UUID]) -> None:
        """:meth:`invalidate` for several products at once (one round trip)."""
        keys = [self.product_key(product_id) for product_id in product_ids]
        self._local_generation += 1
        for key in keys:
            self._local.pop(key, None)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if keys:
                    pipe.delete(*keys)
                pipe.incr(self.generation_key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("invalidate", exc)

    async def forget_pages(self) -> None:
        """Invalidate every cached list page (after writes that bypassed :meth:`invalidate`)."""
        try:
            await self._client.incr(self.generation_key)
        except (RedisError, OSError) as exc:
            self._failed("forget_pages", exc)

    def _hold(self, key: str, document: bytes, generation_seen: int) -> None:
        """Keep a document in this process, unless a local invalidation happened since it was
        read (that read may predate the write)."""
        if self._local_ttl <= 0 or generation_seen != self._local_generation:
            return
        if len(self._local) >= self._local_max:
            del self._local[next(iter(self._local))]  # the oldest entry
        self._local[key] = (self._clock() + self._local_ttl, document)

    def _in_cooldown(self) -> bool:
        return self._clock() < self._bypass_until

    def _bypassed(self) -> bool:
        """Whether a lookup skips Redis; counted, so dashboards see the cache is off."""
        if self._in_cooldown():
            CACHE_REQUESTS.labels("bypass").inc()
            return True
        return False

    def _counted(self, read: CacheRead) -> CacheRead:
        CACHE_REQUESTS.labels("hit" if read.value is not None else "miss").inc()
        return read

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._bypass_until = self._clock() + self._cooldown
        CACHE_REQUESTS.labels("error").inc()
        log.warning(
            "cache_unavailable",
            operation=operation,
            error_type=type(exc).__name__,
            cooldown_seconds=self._cooldown,
        )
