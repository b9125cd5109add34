"""CORS at the edge: which browser origins may call the public API, answered by the gateway alone.

The origins are configuration (`CORS_ALLOWED_ORIGINS`, per environment); what a browser may send
and read is the public API's shape, so it is fixed here: the methods the routes take, the request
headers they read (`Authorization`, `Idempotency-Key`, `If-None-Match`, ...) and the response
headers a client needs (`Location`, `Retry-After`, `RateLimit-*`, `ETag`, `X-Request-ID`, ...).

Starlette's `CORSMiddleware` does the protocol. It wraps everything else in the app, the chassis's
request middleware included (`install_cors`), so that:

- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered from this
  configuration and never reaches a route: it is not forwarded upstream, needs no token and spends
  no rate budget. A browser sends it on its own, without credentials, before the real request; it
  costs the gateway less than the Redis call that would meter it, and a 429 on it would reach the
  page as an opaque network error. A refused preflight is a 400 without
  `Access-Control-Allow-Origin`, and the browser does not send the request;
- every other answer, the gateway's own problems included (401, 429, 503 from a breaker, a throttle
  or the chassis's in-flight limit, 413, 500), carries `Access-Control-Allow-Origin` for an allowed
  origin: without it a page cannot read the status, the problem or `Retry-After`;
- every answer says `Vary: Origin`, with an `Origin` header or without, so a shared cache in front
  never serves one origin's answer to another.

Origins are compared exactly, as a browser serialises them (`scheme://host[:port]`, lower case,
no default port, no path): anything else could never match, so it is refused when the settings
load, like a typo in a rate limit.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

ANY_ORIGIN = "*"

ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Beyond the CORS-safelisted ones (Accept, Accept-Language, Content-Language, and Content-Type,
# which Starlette always allows: `application/json` is not safelisted by the browser).
ALLOWED_HEADERS = (
    "Authorization",
    "Idempotency-Key",
    "If-None-Match",
    "If-Match",
    "X-Request-ID",
    "traceparent",
    "tracestate",
)
# Beyond the safelisted response headers (Cache-Control, Content-Language, Content-Length,
# Content-Type, Expires, Last-Modified, Pragma), which a page always reads.
EXPOSED_HEADERS = (
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "ETag",
    "Age",
    "X-Request-ID",
    "Idempotent-Replayed",
    "WWW-Authenticate",
)

# scheme://host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 address.
_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])"
    r"(:(?P<port>[1-9][0-9]{0,4}))?$"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def parse_origin(value: str) -> str:
    """`value` when it is an origin as a browser sends it; ValueError saying why otherwise."""
    match = _ORIGIN.match(value)
    if match is None:
        if value.lower() != value and _ORIGIN.match(value.lower()):
            msg = f"CORS origin {value!r} is not lower case: browsers send {value.lower()!r}"
        else:
            msg = (
                f"invalid CORS origin {value!r}: expected `http(s)://host[:port]`, "
                "with no path, query or trailing slash"
            )
        raise ValueError(msg)
    port = match.group("port")
    if port is not None and (int(port) > 65535 or _DEFAULT_PORTS[match["scheme"]] == port):
        msg = f"CORS origin {value!r}: browsers omit the default port and never send above 65535"
        raise ValueError(msg)
    return value


def parse_origins(value: Any) -> tuple[str, ...]:
    """Origins from a comma-separated string (or a sequence); `*` alone allows any origin."""
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        msg = "CORS_ALLOWED_ORIGINS is a comma-separated list of origins, or `*`"
        raise ValueError(msg)
    if ANY_ORIGIN in value:
        if len(value) > 1:
            msg = "CORS_ALLOWED_ORIGINS: `*` allows every origin and cannot be listed with others"
            raise ValueError(msg)
        return (ANY_ORIGIN,)
    return tuple(dict.fromkeys(parse_origin(origin) for origin in value))


def install_cors(
    app: FastAPI, *, origins: tuple[str, ...], allow_credentials: bool, max_age_seconds: int
) -> None:
    """Wrap the whole app (call it after every other middleware is added); no origins: no CORS,
    and nothing added to any request."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=allow_credentials,
        expose_headers=EXPOSED_HEADERS,
        max_age=max_age_seconds,
    )
