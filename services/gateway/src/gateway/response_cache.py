"""The shared response cache in Redis: stored answers, by URL and variant, and their purge.

Keys (under the gateway's `REDIS_KEY_PREFIX`, hashed so client input never makes a key long):

- `cache:url:<hash of the request target>`: a hash of the stored variants of one URL, a field
  `<generation>:<hash of the variant>` each; a variant is what the request said in the headers
  the answer `Vary`s on, so requests differing there never share an answer;
- `cache:path:<hash of the normalized path>`: the path's purge record, its `generation` and when
  it was last purged (`purged_at`, Redis's clock); no expiry, one per path ever purged.

A lookup reads both in one round trip and keeps the variants of the path's current generation.
A purge increments the generation of each path, which retires every variant of every URL under it
at once (`/v1/products` with any query), without knowing them. A store is a script that writes
only if the generation is still the one its lookup saw (a read that fetched the old answer before
a write was purged cannot put it back after) and the path was not purged within the last
`settle_seconds`: a replica of the upstream may still answer from its own short-lived copy of
the old data for a moment after the write (catalog's `CACHE_LOCAL_TTL_SECONDS`), and storing that
would serve it for a whole lifetime. The same script drops variants of older generations.

Every call is bounded by `timeout` and never raises: a failure is counted
(`gateway_cache_errors_total{operation}`) and the cache is skipped for a moment
(`gateway.redis_outage`). A purge is tried even then: a skipped purge leaves an old copy served
until its lifetime ends, and writes are rare enough to afford a timeout each.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.metrics import CACHE_ERRORS
from gateway.redis_outage import REDIS_FAILURES, RedisOutage
from gateway.stored_response import StoredResponse

# What `gateway_cache_errors_total` labels.
OPERATIONS = ("lookup", "store", "purge")

# KEYS[1] path record, KEYS[2] the URL's variants; ARGV: generation seen, field, entry, ttl ms,
# settle ms, most variants per URL.
_STORE = """
local generation = redis.call('HGET', KEYS[1], 'generation') or '0'
if generation ~= ARGV[1] then return 0 end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local purged_at = tonumber(redis.call('HGET', KEYS[1], 'purged_at') or '0')
if now_ms < purged_at + tonumber(ARGV[5]) then return 0 end
local current, others = generation .. ':', 0
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, 1, #current) ~= current then
    redis.call('HDEL', KEYS[2], field)
  elseif field ~= ARGV[2] then
    others = others + 1
  end
end
if others >= tonumber(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return 1
"""

# KEYS: path records. The purge time is the server's, like the store's check of it.
_PURGE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'generation', 1)
  redis.call('HSET', key, 'purged_at', string.format('%d', now_ms))
end
return #KEYS
"""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _decoded(blob: bytes) -> StoredResponse | None:
    """The stored answer; None for an entry this version cannot read (a miss, overwritten)."""
    try:
        return StoredResponse.decode(blob)
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Lookup:
    """The current generation of a path and its URL's stored variants of that generation."""

    generation: bytes
    variants: Sequence[StoredResponse]


class ResponseCache:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        timeout: float,
        settle_seconds: float,
        max_variants: int = 16,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout = timeout
        self._settle_ms = round(settle_seconds * 1000)
        self._max_variants = max_variants
        self._store = redis.register_script(_STORE)
        self._purge = redis.register_script(_PURGE)
        self._outage = RedisOutage(
            event="response_cache_unavailable", consequence="reads go to the upstreams"
        )

    def _url_key(self, target: str) -> str:
        return f"{self._prefix}cache:url:{_digest(target)}"

    def _path_key(self, path: str) -> str:
        return f"{self._prefix}cache:path:{_digest(path)}"

    def _failed(self, operation: str, exc: BaseException) -> None:
        CACHE_ERRORS.labels(operation).inc()
        self._outage.failed(exc, operation=operation)

    async def lookup(self, *, path: str, target: str) -> Lookup | None:
        """What is stored for `target` (under the normalized `path`); None when Redis cannot
        be asked (then nothing may be stored for this request either)."""
        if self._outage.paused():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(self._url_key(target))
                    pipe.hget(self._path_key(path), "generation")
                    fields, generation = await pipe.execute()
        except REDIS_FAILURES as exc:
            self._failed("lookup", exc)
            return None
        generation = generation or b"0"
        current = generation + b":"
        variants = [_decoded(blob) for field, blob in fields.items() if field.startswith(current)]
        return Lookup(generation, [variant for variant in variants if variant is not None])

    async def store(
        self, *, path: str, target: str, generation: bytes, response: StoredResponse
    ) -> bool:
        """Keep `response` unless `path` was purged since the lookup that saw `generation`
        (or very recently); whether it was stored."""
        if self._outage.paused():
            return False
        field = generation + b":" + _digest(repr(response.variant)).encode()
        ttl_ms = max(1, round(response.retention_seconds * 1000))
        args: list[bytes | int] = [
            generation,
            field,
            response.encode(),
            ttl_ms,
            self._settle_ms,
            self._max_variants,
        ]
        try:
            async with asyncio.timeout(self._timeout):
                stored = await self._store(
                    keys=[self._path_key(path), self._url_key(target)], args=args
                )
        except REDIS_FAILURES as exc:
            self._failed("store", exc)
            return False
        return bool(stored)

    async def purge(self, paths: Sequence[str]) -> bool:
        """Retire every stored answer under each of `paths` (normalized); whether it worked."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._purge(keys=[self._path_key(path) for path in paths])
        except REDIS_FAILURES as exc:
            self._failed("purge", exc)
            return False
        return True
