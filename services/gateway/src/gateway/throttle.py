"""Adaptive throttling: the gateway refuses locally what an upstream would refuse anyway.

An upstream past its capacity sheds load with 503 + `Retry-After` (its in-flight bound, orders'
admission control), but each refusal still costs the whole path: token verification, the rate
limit's Redis call, the proxied request, the upstream parsing it. Under a heavy overload those
refusals eat the CPU the admitted requests need. So the gateway keeps, per upstream and method,
over the last `window_seconds`, how many requests were settled (answered by the upstream, or
refused here) and how many the upstream accepted (answered with anything but a shedding 503),
and refuses a new request locally with probability

    max(0, (requests - ratio * accepts) / (requests + 1))

(client-side adaptive throttling, Site Reliability Engineering, "Handling Overload"). While the
upstream accepts everything nothing is refused; when it accepts only part, the gateway forwards
about `ratio` times what it accepts (`ratio` 2: enough to notice at once when it recovers) and
answers the rest itself, in microseconds, with 503 + `Retry-After`. 0 turns it off.

Requests in flight count once answered: a burst at start-up or after a quiet window, which has
no answers yet, is never refused for lack of them.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable


class AdaptiveThrottle:
    def __init__(
        self,
        *,
        ratio: float,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._ratio = ratio
        self._window = window_seconds
        self._clock = clock
        self._chance = chance
        # One [second, requests, accepts] per second of the window, oldest first.
        self._seconds: deque[list[int]] = deque()
        self._requests = 0
        self._accepts = 0

    def allow(self) -> bool:
        """Whether to forward a request; a refused one counts as settled at once."""
        if self._ratio <= 0:
            return True
        self._current()  # forget what left the window
        refused_share = (self._requests - self._ratio * self._accepts) / (self._requests + 1)
        if refused_share <= 0 or self._chance() >= refused_share:
            return True
        self._count(accepted=False)
        return False

    def accepted(self) -> None:
        """The upstream took a forwarded request (it answered without shedding it)."""
        self._count(accepted=True)

    def shed(self) -> None:
        """The upstream refused a forwarded request (503 with `Retry-After`)."""
        self._count(accepted=False)

    def _count(self, *, accepted: bool) -> None:
        if self._ratio <= 0:
            return
        current = self._current()
        current[1] += 1
        self._requests += 1
        if accepted:
            current[2] += 1
            self._accepts += 1

    def _current(self) -> list[int]:
        now = int(self._clock())
        while self._seconds and self._seconds[0][0] <= now - self._window:
            _, requests, accepts = self._seconds.popleft()
            self._requests -= requests
            self._accepts -= accepts
        if not self._seconds or self._seconds[-1][0] != now:
            self._seconds.append([now, 0, 0])
        return self._seconds[-1]
