"""Rate limits in Redis: GCRA buckets checked and charged atomically in one round trip.

GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival time
(TAT) of the next request: a rate of n per period spaces requests `period / n` apart and tolerates
a burst of n. A Lua script checks every bucket a request falls into and charges them only if all
allow it, so a refused request costs no budget. Time comes from the Redis server, so gateway
replicas with skewed clocks share budgets correctly.

Redis is a protection, not a dependency: when it fails or is slow, requests pass unlimited (fail
open), the failure is counted, and `gateway.redis_outage` logs it at most every few seconds and
leaves Redis alone for a moment so an outage does not add a timeout to every request.

Which budgets a request draws from (`RatePolicies`): every request spends from the default budget
of its caller, the authenticated user (token `sub`) or, for anonymous requests and invalid tokens,
the client IP. A password attempt (a route whose rate policy says so, gateway.routes) also spends
from a login budget per client IP *and* username, so guessing one account's password is slow while
other users behind the same address can still sign in. Requests there without a username (refresh
grants) cannot guess passwords and only spend the default budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.metrics import RATE_LIMIT_ERRORS
from gateway.rates import Rate
from gateway.redis_outage import REDIS_FAILURES, RedisOutage

# KEYS[i] is a bucket; ARGV[2i-1] its emission interval and ARGV[2i] its period, in microseconds.
# Returns per bucket {allowed, remaining, retry_after_us, reset_us}. TATs are stored as integer
# microseconds formatted with %d: Lua's default number format would round them to 14 digits.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local results, new_tats, all_allowed = {}, {}, true
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then
    all_allowed = false
    results[i] = {0, 0, allow_at - now, tat - now}
  else
    new_tats[i] = new_tat
    results[i] = {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
  end
end
if all_allowed then
  for i, key in ipairs(KEYS) do
    local ttl_ms = math.ceil((new_tats[i] - now) / 1000)
    redis.call('SET', key, string.format('%d', new_tats[i]), 'PX', ttl_ms)
  end
end
return results
"""

_MICROS = 1_000_000

# The budgets' names, as `gateway_rate_limited_total` labels them.
DEFAULT_POLICY = "default"
LOGIN_POLICY = "login"
POLICIES = (DEFAULT_POLICY, LOGIN_POLICY)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget a request draws from: `policy` names it in metrics, `key` is its Redis key."""

    policy: str
    key: str
    rate: Rate


@dataclass(frozen=True, slots=True)
class Verdict:
    bucket: Bucket
    allowed: bool
    remaining: int
    retry_after: float  # seconds until a refused request would be allowed
    reset: float  # seconds until the whole budget is back

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.bucket.rate.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(max(1, math.ceil(self.reset))),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


def decisive(verdicts: Sequence[Verdict]) -> Verdict:
    """The verdict a client is told about: the longest refusal, else the smallest budget left."""
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        return max(refused, key=lambda v: v.retry_after)
    return min(verdicts, key=lambda v: v.remaining)


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        timeout: float,
        pause_after_error: float = 1.0,
        log_interval: float = 10.0,
    ) -> None:
        self._script = redis.register_script(_GCRA)
        self._timeout = timeout
        self._outage = RedisOutage(
            event="rate_limit_unavailable",
            consequence="requests pass without rate limits",
            pause_after_error=pause_after_error,
            log_interval=log_interval,
        )

    async def check(self, buckets: Sequence[Bucket]) -> list[Verdict] | None:
        """Charge a request to `buckets` if all of them allow it; None when not checked."""
        if not buckets or self._outage.paused():
            return None
        args: list[int] = []
        for bucket in buckets:
            period = bucket.rate.period_seconds * _MICROS
            args += [max(1, period // bucket.rate.limit), period]
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._script(keys=[b.key for b in buckets], args=args)
        except REDIS_FAILURES as exc:
            RATE_LIMIT_ERRORS.inc()
            self._outage.failed(exc)
            return None
        return [
            Verdict(
                bucket=bucket,
                allowed=bool(allowed),
                remaining=max(0, int(remaining)),
                retry_after=retry_after / _MICROS,
                reset=reset / _MICROS,
            )
            for bucket, (allowed, remaining, retry_after, reset) in zip(buckets, raw, strict=True)
        ]


def login_username(value: object) -> str | None:
    """The username as auth compares it (trimmed, lower-cased); None when there is none."""
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


@dataclass(frozen=True, slots=True)
class RatePolicies:
    default: Rate | None
    login: Rate | None
    key_prefix: str

    def buckets(self, *, subject: str | None, client_ip: str, username: str | None) -> list[Bucket]:
        buckets: list[Bucket] = []
        if self.default is not None:
            caller = f"user:{subject}" if subject is not None else f"ip:{client_ip}"
            key = f"{self.key_prefix}ratelimit:{DEFAULT_POLICY}:{caller}"
            buckets.append(Bucket(DEFAULT_POLICY, key, self.default))
        if self.login is not None and username is not None:
            # Hashed: the key holds neither the e-mail address nor unbounded client input.
            attempt = hashlib.sha256(f"{client_ip}\n{username}".encode()).hexdigest()[:32]
            key = f"{self.key_prefix}ratelimit:{LOGIN_POLICY}:{attempt}"
            buckets.append(Bucket(LOGIN_POLICY, key, self.login))
        return buckets
