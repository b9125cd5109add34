"""Coarse caching at the edge: GETs of the cached routes (the product list and pages, `cached` in
`gateway.routes`) answered from the shared cache in Redis (`gateway.response_cache`), as the
upstream's `Cache-Control` allows (`gateway.cache_control`).

- **Never cached**: a request with `Authorization` (or a `Range`, or a precondition other than
  `If-None-Match`) goes upstream untouched and its answer is not stored (`bypass`); an answer is
  stored only if it is public, with a lifetime, without `private`, `no-store` or `Set-Cookie`.
- **Hit**: a fresh copy (younger than `s-maxage`, else `max-age`) of the variant the request's
  `Vary`'d headers select. **Stale**: a copy past its lifetime but within
  `stale-while-revalidate` is served at once while one background request revalidates it with
  its ETag (a 304 refreshes the copy without a body). **Miss**: fetched upstream and stored.
- The client's `If-None-Match` is the gateway's to answer: it is not forwarded (the cache needs
  the whole answer), and a 200 whose ETag the client already holds becomes a 304 with no body.
  `Cache-Control: no-cache` makes the gateway ask the upstream (storing what it gets, unless the
  request also says `no-store`: then the cache is not consulted at all).
- Every answer of a cacheable response carries `Age`; every answer of this path `Cache-Status`
  (RFC 9211), e.g. `gateway; hit; ttl=12` or `gateway; fwd=miss; stored`.

**Coalescing.** Concurrent misses of one URL in one process send one request upstream
(`chassis.single_flight`). The others get its answer when it may be shared: a storable answer
of their variant, or its failure (an unreachable upstream or an open circuit is the same for
everyone); otherwise (a private answer, another variant) each goes upstream itself once it is
known. Not across replicas: a lock in Redis would add a round trip to every miss and make the
others poll for the entry, and a holder that dies would hold them all up for the lock's
lifetime, while per-process coalescing already bounds a burst of misses to one request per
gateway replica: a handful, not hundreds, of reads that catalog serves from its own cache.

**Purge.** A write to a cached route that succeeds (a non-error answer to POST, PUT, PATCH or
DELETE) purges, before its answer leaves, the written path and its collection
(`gateway.routes.purged_by_write`: `PATCH /v1/products/{id}` purges that product and every page
of `/v1/products`), as RFC 9111 §4.4 asks of any cache an unsafe request passes through. The
`product.updated` event announces the same writes, and was weighed as the trigger:

- a gateway consumer of it would make the gateway a broker client (aio-pika, a queue and its
  dead letters, the broker in its readiness), and the chassis consumer records each event in an
  inbox in the consuming service's Postgres schema, which the gateway does not have (its image
  carries no database or broker library: tests/test_optional_dependencies.py); and the event
  comes after the outbox relay, so the admin who wrote could read the old copy back;
- a purge by catalog would have catalog write the gateway's keys (its Redis, key prefix and key
  layout, `Vary` included): an upstream coupled to the edge's internals.

`product.updated` is published by catalog's admin writes only, and those reach catalog through
the gateway alone, so purging on the write itself loses nothing: the writer reads its own write,
every replica sees the purge at once (the cache is shared), and nothing new runs. Stock changed
by the order saga publishes no `product.updated` (purging on it would empty the list's cache at
the order rate): at the edge a product's stock may be as old as its lifetime plus
`stale-while-revalidate`. A client that needs it current asks with `Cache-Control: no-cache`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from chassis.conditional import NOT_MODIFIED_HEADERS, not_modified
from chassis.logging import get_logger
from chassis.problems import DomainError
from chassis.single_flight import SingleFlight
from gateway.cache_control import RequestDirectives, header_values, shared_freshness
from gateway.forwarding import RawHeaders, relayed_headers
from gateway.metrics import CACHE_REQUESTS
from gateway.response_cache import ResponseCache
from gateway.stored_response import StoredResponse
from gateway.upstream_calls import UpstreamAnswer

log = get_logger(__name__)

Fetch = Callable[[RawHeaders], Awaitable[UpstreamAnswer]]

# What `gateway_cache_requests_total` labels.
RESULTS = ("hit", "stale", "miss", "coalesced", "bypass", "unavailable")
# A request with one of these goes upstream untouched: it is personal, or asks for a part, or
# under a precondition the gateway does not evaluate.
_PASSED = frozenset({b"authorization", b"range", b"if-range", b"if-match", b"if-unmodified-since"})
# Not forwarded: If-None-Match is answered here, If-Modified-Since may be ignored (a full answer
# is always a correct one), and the cache needs the full answer to store.
_CONDITIONS = frozenset({b"if-none-match", b"if-modified-since"})


@dataclass(frozen=True, slots=True)
class _Fetched:
    answer: UpstreamAnswer  # with the headers a client gets
    response: StoredResponse | None  # the answer as the cache keeps it; None: it may not
    stored: bool

    def shareable_with(self, headers: RawHeaders) -> bool:
        return self.response is not None and self.response.selected_by(headers)


def _merged(stored: RawHeaders, not_modified_headers: RawHeaders) -> RawHeaders:
    """A stored answer's headers updated by a 304's (RFC 9111 §3.2)."""
    updated = {name for name, _ in not_modified_headers}
    return [*((n, v) for n, v in stored if n not in updated), *not_modified_headers]


class EdgeCache:
    def __init__(self, store: ResponseCache, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._flights: SingleFlight[_Fetched] = SingleFlight()

    async def get(
        self, *, path: str, target: str, headers: RawHeaders, fetch: Fetch
    ) -> UpstreamAnswer:
        """The answer to `GET target` (`path` normalized; `headers` as they would be forwarded)
        from the cache or, through `fetch`, from the upstream."""
        if any(name.lower() in _PASSED for name, _ in headers):
            CACHE_REQUESTS.labels("bypass").inc()
            answer = await fetch(headers)
            return _relayed(answer, "fwd=bypass")
        asks = RequestDirectives.of(headers)
        conditions = header_values(headers, b"if-none-match")
        forwarded = [(n, v) for n, v in headers if n.lower() not in _CONDITIONS]
        unused = asks.revalidate and asks.no_store  # neither answered from nor stored in it
        lookup = None if unused else await self._store.lookup(path=path, target=target)
        stored = None
        if lookup is not None:
            stored = next((s for s in lookup.variants if s.selected_by(forwarded)), None)
        refresh = functools.partial(
            self._fetch,
            path=path,
            target=target,
            headers=forwarded,
            generation=None if lookup is None or asks.no_store else lookup.generation,
            validator=stored,
            fetch=fetch,
        )
        now = self._clock()
        if stored is not None and not asks.revalidate:
            ttl = stored.ttl(now)
            if ttl > 0 or stored.servable_stale(now):
                if ttl <= 0:
                    self._revalidate(target, refresh)
                CACHE_REQUESTS.labels("hit" if ttl > 0 else "stale").inc()
                status = f"hit; ttl={math.floor(ttl)}"
                return _answer(stored, age=stored.age(now), status=status, conditions=conditions)
        if asks.revalidate:
            fetched, result = await refresh(), "bypass"
        else:
            fetched, joined = await self._flights.run(target, refresh)
            if joined and not fetched.shareable_with(forwarded):
                fetched, joined = await refresh(), False
            result = "coalesced" if joined else "miss" if lookup is not None else "unavailable"
        CACHE_REQUESTS.labels(result).inc()
        forward = "request" if asks.revalidate else "stale" if stored is not None else "miss"
        status = f"fwd={forward}" + ("; collapsed" if result == "coalesced" else "")
        status += "; stored" if fetched.stored else ""
        status += "; detail=unavailable" if result == "unavailable" else ""
        if fetched.response is None:
            return _relayed(fetched.answer, status)
        age = fetched.response.age(self._clock())
        return _answer(fetched.response, age=age, status=status, conditions=conditions)

    async def _fetch(
        self,
        *,
        path: str,
        target: str,
        headers: RawHeaders,
        generation: bytes | None,
        validator: StoredResponse | None,
        fetch: Fetch,
    ) -> _Fetched:
        """Ask the upstream (conditionally, when there is a stored copy with an ETag), store
        what may be stored when `generation` says a lookup allowed it."""
        etag = validator.etag if validator is not None else None
        conditional = [*headers, (b"if-none-match", etag.encode("latin-1"))] if etag else headers
        answer = await fetch(conditional)
        relayed = relayed_headers(answer.headers)
        if answer.status == 304 and validator is not None:
            status, body = validator.status, validator.body
            relayed = _merged(validator.headers, relayed)
        else:
            status, body = answer.status, answer.body
        freshness = shared_freshness(status, relayed)
        if freshness is None:
            return _Fetched(UpstreamAnswer(status, relayed, body), None, stored=False)
        response = StoredResponse.received(
            status=status,
            headers=relayed,
            body=body,
            freshness=freshness,
            request_headers=headers,
            now=self._clock(),
        )
        stored = generation is not None and await self._store.store(
            path=path, target=target, generation=generation, response=response
        )
        return _Fetched(UpstreamAnswer(status, response.headers, body), response, stored)

    def _revalidate(self, target: str, refresh: Callable[[], Awaitable[_Fetched]]) -> None:
        """Refresh a stale copy in the background, unless a fetch of its URL runs already."""

        async def logged() -> _Fetched:
            try:
                return await refresh()
            except DomainError:
                raise  # the upstream call logged it; the stale copy is served meanwhile
            except Exception:
                log.exception("cache_revalidation_failed", target=target)
                raise

        self._flights.start(target, logged)

    async def purge(self, paths: Sequence[str]) -> None:
        """Retire the stored answers under `paths` (normalized), after a write to them."""
        if not await self._store.purge(paths):
            log.error(
                "cache_purge_failed",
                paths=list(paths),
                consequence="stored copies are served until their lifetime ends",
            )

    async def aclose(self) -> None:
        """Stop the fetches still running (revalidations), before the clients they use close."""
        await self._flights.aclose()


def _status(parameters: str) -> tuple[bytes, bytes]:
    return (b"cache-status", f"gateway; {parameters}".encode())


def _relayed(answer: UpstreamAnswer, status: str) -> UpstreamAnswer:
    """An answer the cache did not (and may not) keep, as it came, with its `Cache-Status`."""
    return UpstreamAnswer(answer.status, [*answer.headers, _status(status)], answer.body)


def _answer(
    response: StoredResponse, *, age: float, status: str, conditions: list[str]
) -> UpstreamAnswer:
    """The client's answer from a cacheable response: with `Age` and `Cache-Status`, or a 304
    when the client's `If-None-Match` holds its ETag."""
    extra = [(b"age", str(math.floor(age)).encode()), _status(status)]
    if not_modified(conditions, response.etag):
        kept = [(n, v) for n, v in response.headers if n.decode("latin-1") in NOT_MODIFIED_HEADERS]
        return UpstreamAnswer(304, [*kept, *extra], b"")
    return UpstreamAnswer(response.status, [*response.headers, *extra], response.body)
