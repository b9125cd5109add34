"""Conditional GETs (RFC 9110 §13): a strong entity tag for a response body, and whether a
request's `If-None-Match` already holds it, in which case the answer is 304 Not Modified with no
body.

The tag is a digest of the exact bytes served, so it is strong (two bodies share a tag only if
they are byte for byte the same) and changes the moment the body does, whichever replica serves
it. The catalog answers its public reads with it; the gateway answers the same conditional
requests from its cache (`gateway.edge_cache`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response

# An entity tag as it appears in a list: optionally weak, then a quoted opaque string.
_ENTITY_TAG = re.compile(r'(?:W/)?"[^"]*"')
# What a 304 carries (RFC 9110 §15.4.5): the fields a 200 would have had that describe the
# stored response, so a cache can update it; never a body or its length and type.
NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary"}
)


def strong_etag(body: bytes) -> str:
    """`"<digest>"`: the body's strong entity tag."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def not_modified(if_none_match: Iterable[str], etag: str | None) -> bool:
    """Whether a GET with these `If-None-Match` values (each a list of tags, or `*`) is answered
    304 for a representation tagged `etag`: the weak comparison, as RFC 9110 §13.1.2 has it."""
    if etag is None:
        return False
    wanted = _opaque(etag)
    for value in if_none_match:
        if value.strip() == "*":
            return True
        if any(_opaque(tag) == wanted for tag in _ENTITY_TAG.findall(value)):
            return True
    return False


def public_read(
    request: Request, body: bytes, *, cache_control: str, media_type: str = "application/json"
) -> Response:
    """A public representation every cache may keep (`cache_control`), tagged with its strong
    ETag, or 304 when the request's `If-None-Match` holds that tag."""
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if not_modified(request.headers.getlist("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
