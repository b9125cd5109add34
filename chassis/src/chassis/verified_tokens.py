"""What a verified token stood for, remembered until the token expires.

A token's signature and claims are checked once, not on every request that carries it: clients
send the same access token for minutes, and a full check (an Ed25519 or RSA signature) costs far
more than the request's own work at the edge. The remembered value is keyed by the whole token
string, so only the very token that was verified finds it; it is dropped once the token's `exp`
has passed, and the whole memory is cleared when it is full (rare: a client holds one token at a
time). Used for users' tokens (`chassis.tokens.JwksVerifier.verify`) and services' tokens
(`chassis.service_callers.ServiceTokenVerifier`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class VerifiedTokens(Generic[T]):
    def __init__(self, *, max_entries: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._verified: dict[str, tuple[T, float]] = {}

    def get(self, token: str) -> T | None:
        """What `token` stood for when verified, unless it has expired since."""
        remembered = self._verified.get(token)
        if remembered is None:
            return None
        value, expires_at = remembered
        if self._clock() < expires_at:
            return value
        del self._verified[token]
        return None

    def keep(self, token: str, value: T, expires_at: float) -> None:
        """Remember `value` for `token` until `expires_at` (its `exp`, epoch seconds)."""
        if len(self._verified) >= self._max_entries:
            self._verified.clear()
        self._verified[token] = (value, expires_at)
