"""Translating between the client's request/response and the upstream's: which headers cross.

Hop-by-hop headers describe one connection and never cross the gateway, in either direction.
`Host` and `Content-Length` are recomputed for the other side. The `X-Forwarded-*` headers are set
by the gateway alone: it is the trust boundary, so anything a client claims there is dropped and
`X-Forwarded-For` carries the one client address the gateway resolved (see `client_ip`).
`X-Request-ID` and the W3C trace headers are dropped too and re-added by the outbound client from
the request context, which holds the validated request id and the gateway's own server span.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailers", b"transfer-encoding", b"upgrade"}
)
_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"content-length",
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
        # The gateway's own service token is set by its upstream client; a client's is dropped.
        b"fleet-service-authorization",
        b"traceparent",
        b"tracestate",
        b"baggage",
    }
)
# The gateway's server writes its own Date; X-Request-ID is set by the gateway's middleware.
_NOT_RELAYED = frozenset({b"content-length", b"date", b"server", b"x-request-id"})
# Statuses whose responses never have a body nor a Content-Length computed from one.
_BODYLESS_STATUSES = frozenset({204, 304})


def _connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names the `Connection` header declares hop-by-hop for this message."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    )


def _crosses(name: bytes, listed: frozenset[bytes], dropped: frozenset[bytes]) -> bool:
    return not (
        name in HOP_BY_HOP or name.startswith(b"proxy-") or name in listed or name in dropped
    )


def upstream_target(scope: Scope) -> str:
    """Path and query exactly as the client sent them (still percent-encoded)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


def forwarded_headers(scope: Scope, client_ip: str | None) -> RawHeaders:
    """The `X-Forwarded-*` headers of a request the gateway sends on behalf of this one."""
    headers: RawHeaders = []
    if client_ip:
        headers.append((b"x-forwarded-for", client_ip.encode("latin-1")))
    headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
    host = next((v for n, v in scope["headers"] if n.lower() == b"host"), None)
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


def upstream_request_headers(scope: Scope, *, client_ip: str | None = None) -> RawHeaders:
    """The client's end-to-end headers plus the gateway's `X-Forwarded-*`; `client_ip` defaults
    to the socket peer."""
    incoming: RawHeaders = list(scope["headers"])
    listed = _connection_listed(incoming)
    headers = [(n, v) for n, v in incoming if _crosses(n.lower(), listed, _NOT_FORWARDED)]
    if not any(name.lower() == b"accept-encoding" for name, _ in headers):
        # The client accepts no particular encoding; without this the outbound client would ask
        # for gzip and the gateway would relay bytes the client never asked for.
        headers.append((b"accept-encoding", b"identity"))
    if client_ip is None:
        client = scope.get("client")
        client_ip = str(client[0]) if client else None
    return [*headers, *forwarded_headers(scope, client_ip)]


def relayed_headers(upstream: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The upstream's headers that cross to the client, names lower-cased."""
    received = [(name.lower(), value) for name, value in upstream]
    listed = _connection_listed(received)
    return [(n, v) for n, v in received if _crosses(n, listed, _NOT_RELAYED)]


def relayed_response_headers(
    upstream: Iterable[tuple[bytes, bytes]], *, status: int, body_length: int, head: bool
) -> RawHeaders:
    """The upstream's headers the client gets, with a Content-Length for the relayed body."""
    received = [(name.lower(), value) for name, value in upstream]
    headers = relayed_headers(received)
    if status < 200 or status in _BODYLESS_STATUSES:
        return headers
    if head:
        # A HEAD answer announces the length of the body a GET would have returned.
        declared = next((v for n, v in received if n == b"content-length"), None)
        return [*headers, (b"content-length", declared)] if declared is not None else headers
    return [*headers, (b"content-length", str(body_length).encode())]
