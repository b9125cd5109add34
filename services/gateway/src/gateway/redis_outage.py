"""What the gateway does when Redis fails or is slow: without it, not instead of it.

Redis holds the rate limits (`gateway.rate_limit`) and the shared response cache
(`gateway.response_cache`): a protection and an accelerator, never a dependency. Each of them
bounds its Redis calls by `REDIS_TIMEOUT_SECONDS` and, when one fails, goes on without Redis
(requests pass unlimited, reads go upstream), counts the failure and hands it to its
`RedisOutage`, which leaves Redis alone for a moment so an outage does not add a timeout to every
request, and logs at most every few seconds, with how many failures the line stands for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.exceptions import RedisError

from chassis.logging import get_logger

log = get_logger(__name__)

# What a Redis call raises when Redis is down, unreachable or slower than the client's timeout.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class RedisOutage:
    """The pause after a failure and the throttled warning of one user of Redis: `event` is the
    log event, `consequence` what clients get meanwhile."""

    def __init__(
        self,
        *,
        event: str,
        consequence: str,
        pause_after_error: float = 1.0,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._event = event
        self._consequence = consequence
        self._pause_after_error = pause_after_error
        self._log_interval = log_interval
        self._clock = clock
        self._paused_until = float("-inf")
        self._next_log = float("-inf")
        self._unlogged = 0

    def paused(self) -> bool:
        """Whether Redis is being left alone after a recent failure."""
        return self._clock() < self._paused_until

    def failed(self, exc: BaseException, **fields: str) -> None:
        now = self._clock()
        self._paused_until = now + self._pause_after_error
        self._unlogged += 1
        if now >= self._next_log:
            log.warning(
                self._event,
                error=type(exc).__name__,
                errors=self._unlogged,
                consequence=self._consequence,
                **fields,
            )
            self._unlogged = 0
            self._next_log = now + self._log_interval
