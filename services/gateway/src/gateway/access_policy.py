"""Which requests need an authenticated caller, as one table.

The gateway authenticates; it does not authorize. A route listed here refuses a request without a
bearer token, every other route lets it through anonymously. Any request that does carry an
`Authorization` header must present a valid token, whatever the route. Roles (admin for catalog
writes, ownership of orders) are the services' business: they re-check the forwarded token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANY_METHOD: frozenset[str] = frozenset()
READS = frozenset({"GET", "HEAD"})
_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True, slots=True)
class CallerRequired:
    """Requests to `path` (and below it, if `subtree`) by one of `methods` need a caller.

    An empty `methods` means every method; `except_methods` are exempt.
    """

    path: str
    methods: frozenset[str] = ANY_METHOD
    except_methods: frozenset[str] = frozenset()
    subtree: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if method in self.except_methods:
            return False
        return path == self.path or (self.subtree and path.startswith(self.path + "/"))


POLICY: tuple[CallerRequired, ...] = (
    CallerRequired("/v1/auth/me", methods=READS),
    CallerRequired("/v1/auth/logout", methods=frozenset({"POST"})),
    CallerRequired("/v1/orders", subtree=True),
    CallerRequired("/v1/webhooks", subtree=True),
    CallerRequired("/v1/products", except_methods=READS, subtree=True),
    CallerRequired("/v1/bff", subtree=True),
)


def normalized_path(path: str) -> str:
    """Repeated or trailing slashes may reach the same handler upstream (or a redirect to it), so
    rules about a path must hold for every spelling of it."""
    return _SLASHES.sub("/", path).rstrip("/") or "/"


def requires_caller(method: str, path: str) -> bool:
    """Whether `method path` (the decoded request path) needs a bearer token."""
    normalized = normalized_path(path)
    return any(rule.matches(method.upper(), normalized) for rule in POLICY)
