"""Which rate-limit budgets a request draws from.

Every request spends from the default budget of its caller: the authenticated user (token `sub`)
or, for anonymous requests and invalid tokens, the client IP. A password attempt on
`POST /v1/auth/token` also spends from a login budget per client IP *and* username, so guessing one
account's password is slow while other users behind the same address can still sign in. Requests
there without a username (refresh grants) cannot guess passwords and only spend the default budget.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.access_policy import normalized_path
from gateway.rate_limit import Bucket
from gateway.rates import Rate

LOGIN_PATH = "/v1/auth/token"


def is_login(method: str, path: str) -> bool:
    return method.upper() == "POST" and normalized_path(path) == LOGIN_PATH


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
            key = f"{self.key_prefix}ratelimit:default:{caller}"
            buckets.append(Bucket("default", key, self.default))
        if self.login is not None and username is not None:
            # Hashed: the key holds neither the e-mail address nor unbounded client input.
            attempt = hashlib.sha256(f"{client_ip}\n{username}".encode()).hexdigest()[:32]
            key = f"{self.key_prefix}ratelimit:login:{attempt}"
            buckets.append(Bucket("login", key, self.login))
        return buckets
