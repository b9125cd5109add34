"""The public routes, as one table: where each goes, who may call it, which budgets it spends.

Each public route is a path template with its upstream (or the gateway itself, for the aggregated
backend-for-frontend routes), its access policy and its rate policy:

- Access: the gateway authenticates; it does not authorize. A route needs a caller for the methods
  its `Access` names, and lets every other request through anonymously. Any request that does
  carry an `Authorization` header must present a valid token, whatever the route. Roles (admin for
  catalog writes, ownership of orders) are the services' business: they re-check the forwarded
  token.
- Rates: every request spends from the default budget of its caller (see
  `gateway.rate_limit.RatePolicies`); a password attempt also spends from the login budget of its
  client IP and username.
- Caching: the GETs of a `cached` route may be answered from the shared cache, as its upstream's
  `Cache-Control` allows, and a successful write to it purges what is stored for its path and its
  collection (`gateway.edge_cache`).

The table is matched in order, first match wins, on the request path normalized (repeated and
trailing slashes removed: they may reach the same handler upstream, so a rule about a path must
hold for every spelling of it). `/{rest:path}` at the end of a template covers the path before it
and everything below. A path nothing matches needs no caller and spends the default budget only.

The gateway routes requests by the same templates (gateway.router): one HTTP route per template,
except the templates a catch-all of the same upstream already routes (`/v1/auth/me` is routed by
`/v1/auth/{rest:path}`), so request metrics keep one route label per upstream path prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.routing import compile_path

# The upstream of the routes the gateway answers itself.
GATEWAY = "gateway"
BFF_HOME = "/v1/bff/home"
ADMIN_AUDIT = "/v1/admin/audit"
CATCH_ALL = "/{rest:path}"
READS = frozenset({"GET", "HEAD"})
_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True, slots=True)
class Access:
    """Which methods need an authenticated caller: `caller_for` (None: every method) except
    `anonymous_for`."""

    caller_for: frozenset[str] | None = frozenset()
    anonymous_for: frozenset[str] = frozenset()

    def requires_caller(self, method: str) -> bool:
        if method in self.anonymous_for:
            return False
        return self.caller_for is None or method in self.caller_for


ANYONE = Access()
CALLER = Access(caller_for=None)
CALLER_TO_WRITE = Access(caller_for=None, anonymous_for=READS)


def caller_for(*methods: str) -> Access:
    return Access(caller_for=frozenset(methods))


@dataclass(frozen=True, slots=True)
class Rates:
    """Which budgets a request spends beyond its caller's default one: `login_for` are the
    methods whose requests are password attempts."""

    login_for: frozenset[str] = frozenset()

    def is_login(self, method: str) -> bool:
        return method in self.login_for


DEFAULT_BUDGET = Rates()
LOGIN_ON_POST = Rates(login_for=frozenset({"POST"}))


@dataclass(frozen=True, slots=True)
class PublicRoute:
    template: str
    upstream: str
    access: Access = ANYONE
    rates: Rates = DEFAULT_BUDGET
    cached: bool = False

    @property
    def prefix(self) -> str | None:
        """The path a catch-all template covers (with everything below it); None otherwise."""
        return self.template.removesuffix(CATCH_ALL) if self.template.endswith(CATCH_ALL) else None

    def covers(self, normalized: str) -> bool:
        """Whether this route's policies apply to the normalized request path."""
        prefix = self.prefix
        if prefix is None:
            return normalized == self.template
        return normalized == prefix or normalized.startswith(prefix + "/")


ROUTES: tuple[PublicRoute, ...] = (
    PublicRoute("/v1/auth/me", "auth", access=caller_for(*READS)),
    PublicRoute("/v1/auth/logout", "auth", access=caller_for("POST")),
    PublicRoute("/v1/auth/token", "auth", rates=LOGIN_ON_POST),
    PublicRoute("/v1/auth/{rest:path}", "auth"),
    PublicRoute("/v1/products", "catalog", access=CALLER_TO_WRITE, cached=True),
    PublicRoute("/v1/products/{rest:path}", "catalog", access=CALLER_TO_WRITE, cached=True),
    PublicRoute("/v1/orders", "orders", access=CALLER),
    # Exports are written by the worker: before the orders templates, which would cover them.
    PublicRoute("/v1/orders/exports", "worker", access=CALLER),
    PublicRoute("/v1/orders/exports/{rest:path}", "worker", access=CALLER),
    PublicRoute("/v1/orders/{rest:path}", "orders", access=CALLER),
    PublicRoute("/v1/webhooks/{rest:path}", "worker", access=CALLER),
    PublicRoute(BFF_HOME, GATEWAY, access=CALLER),
    PublicRoute(ADMIN_AUDIT, GATEWAY, access=CALLER),
    PublicRoute("/v1/admin/reconciliations", "worker", access=CALLER),
)

# What a path no route covers gets: anonymous callers, the default budget.
UNLISTED = PublicRoute("", GATEWAY)


def normalized_path(path: str) -> str:
    return _SLASHES.sub("/", path).rstrip("/") or "/"


def public_route(path: str) -> PublicRoute:
    """The route whose policies apply to `path` (the decoded request path)."""
    normalized = normalized_path(path)
    return next((route for route in ROUTES if route.covers(normalized)), UNLISTED)


def purged_by_write(normalized: str) -> list[str]:
    """The paths whose stored answers a successful write to `normalized` makes stale: the path
    itself and its collection (the path one segment up), when a cached route covers it."""
    collection = normalized.rsplit("/", 1)[0]
    return [normalized, *([collection] if public_route(collection).cached else [])]


def requires_caller(method: str, path: str) -> bool:
    """Whether `method path` needs a bearer token."""
    return public_route(path).access.requires_caller(method.upper())


def _routed_by_catch_all(route: PublicRoute) -> bool:
    return any(
        other.prefix is not None
        and other.upstream == route.upstream
        and compile_path(other.template)[0].match(route.template) is not None
        for other in ROUTES
        if other is not route
    )


def proxied_routes() -> list[PublicRoute]:
    """The routes forwarded upstream that need an HTTP route of their own."""
    return [r for r in ROUTES if r.upstream != GATEWAY and not _routed_by_catch_all(r)]


def upstream_names() -> list[str]:
    """The services behind the public routes, sorted."""
    return sorted({route.upstream for route in ROUTES if route.upstream != GATEWAY})
