"""The shared response cache at the gateway, against a catalog stand-in that answers as catalog
does (public `Cache-Control`, strong ETag, 304 to `If-None-Match`) and counts what reaches it:
hits and misses, `Age`, 304s, nothing authenticated or private stored, `Vary` keeping variants
apart, concurrent misses coalesced, stale copies revalidated, Redis failing open, and a write
through the gateway purging the product and the list."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY

from chassis.conditional import public_read
from fleetctl.testing import eventually, serve_in_thread

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Bearer = Callable[..., dict[str, str]]
PUBLIC = "public, max-age=5, s-maxage=60, stale-while-revalidate=30"


@dataclass
class FakeCatalog:
    """Products by id, read and written as catalog's API does; `cache_control`, `headers` and
    `delay` shape the reads, `reads` counts the requests that reached it by path."""

    cache_control: str = PUBLIC
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def reads(self, path: str) -> int:
        return sum(1 for method, seen, _ in self.received if method == "GET" and seen == path)

    def last(self, path: str) -> dict[str, str]:
        return next(headers for _, seen, headers in reversed(self.received) if seen == path)

    def add(self, **fields: Any) -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = {
            "id": product_id,
            "name": "Lamp",
            "price_cents": 1000,
            **fields,
        }
        return product_id

    def _read(self, request: Request, document: Any) -> Response:
        answer = public_read(
            request, json.dumps(document).encode(), cache_control=self.cache_control
        )
        answer.headers.update(self.headers)
        return answer

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Response:
            self.received.append((request.method, request.url.path, dict(request.headers)))
            response: Response = await call_next(request)
            if request.method == "GET":
                await asyncio.sleep(self.delay)  # answered as of its arrival, delivered late
            return response

        @app.get("/v1/products")
        async def page(request: Request) -> Response:
            language = request.headers.get("accept-language", "")
            return self._read(request, {"items": list(self.products.values()), "lang": language})

        @app.get("/v1/products/{product_id}")
        async def product(product_id: str, request: Request) -> Response:
            language = request.headers.get("accept-language", "")
            return self._read(request, {**self.products[product_id], "lang": language})

        @app.patch("/v1/products/{product_id}")
        async def update(product_id: str, request: Request) -> dict[str, Any]:
            self.products[product_id].update(await request.json())
            return self.products[product_id]

        return app


@pytest.fixture
def catalog() -> Iterator[FakeCatalog]:
    fake = FakeCatalog()
    with serve_in_thread(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
def cached_gateway(
    gateway_factory: GatewayFactory, catalog: FakeCatalog
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """`async with cached_gateway(**settings) as client:` the gateway in front of the stand-in."""

    @asynccontextmanager
    async def start(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
        async with gateway_factory(catalog_url=catalog.url, **settings) as client:
            yield client

    return start


def _results() -> dict[str, float]:
    names = ("hit", "stale", "miss", "coalesced", "bypass", "unavailable")
    return {
        name: REGISTRY.get_sample_value("gateway_cache_requests_total", {"result": name}) or 0.0
        for name in names
    }


def _counted_since(before: dict[str, float]) -> dict[str, float]:
    """The results counted since `before`, those that moved only."""
    now = _results()
    return {name: now[name] - before[name] for name in now if now[name] != before[name]}


async def test_a_second_read_is_a_hit_with_its_age_and_the_upstream_sees_one(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    before = _results()
    async with cached_gateway() as gateway:
        first = await gateway.get(f"/v1/products/{product}")
        second = await gateway.get(f"/v1/products/{product}")
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert first.headers["age"] == "0"
    assert second.headers["cache-status"].startswith("gateway; hit; ttl=")
    assert 0 <= int(second.headers["age"]) <= 1
    assert second.json() == first.json()
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == PUBLIC
    assert "ratelimit-remaining" in second.headers  # still admitted and charged
    assert catalog.reads(f"/v1/products/{product}") == 1
    assert _counted_since(before) == {"miss": 1, "hit": 1}


async def test_age_counts_from_the_age_the_upstream_gave_and_shared_max_age_rules(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    catalog.headers = {"Age": "50"}
    catalog.cache_control = "public, max-age=1, s-maxage=60"  # s-maxage: fresh for 10 s more
    product = catalog.add()
    async with cached_gateway() as gateway:
        await gateway.get(f"/v1/products/{product}")
        hit = await gateway.get(f"/v1/products/{product}")
    assert 50 <= int(hit.headers["age"]) <= 51
    assert hit.headers["cache-status"] in ("gateway; hit; ttl=9", "gateway; hit; ttl=10")
    assert catalog.reads(f"/v1/products/{product}") == 1


async def test_if_none_match_is_answered_304_from_the_cache(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    async with cached_gateway() as gateway:
        etag = (await gateway.get(f"/v1/products/{product}")).headers["etag"]
        unchanged = await gateway.get(
            f"/v1/products/{product}", headers={"If-None-Match": f'"other", {etag}'}
        )
        weak = await gateway.get(f"/v1/products/{product}", headers={"If-None-Match": f"W/{etag}"})
        changed = await gateway.get(f"/v1/products/{product}", headers={"If-None-Match": '"old"'})
    assert unchanged.status_code == weak.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["cache-control"] == PUBLIC
    assert "age" in unchanged.headers
    assert "content-type" not in unchanged.headers
    assert changed.status_code == 200
    assert changed.json()["id"] == product
    # The conditions were the gateway's to answer: catalog was asked once, without them.
    assert catalog.reads(f"/v1/products/{product}") == 1
    assert "if-none-match" not in catalog.last(f"/v1/products/{product}")


async def test_a_miss_with_if_none_match_is_fetched_whole_stored_and_answered_304(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with httpx.AsyncClient(base_url=catalog.url) as direct:
        etag = (await direct.get(path)).headers["etag"]  # what a client held from before
    async with cached_gateway() as gateway:
        cold = await gateway.get(path, headers={"If-None-Match": etag})
        plain = await gateway.get(path)
    assert cold.status_code == 304
    assert cold.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert "if-none-match" not in catalog.last(path)
    assert plain.status_code == 200
    assert plain.headers["cache-status"].startswith("gateway; hit")
    assert catalog.reads(path) == 2  # the direct read, then the gateway's


async def test_authenticated_reads_are_never_answered_from_nor_stored_in_the_cache(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    bearer: Bearer,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    before = _results()
    async with cached_gateway() as gateway:
        anonymous = await gateway.get(path)  # stored
        mine = [await gateway.get(path, headers=bearer(sub="alice")) for _ in range(2)]
    assert anonymous.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert [r.headers["cache-status"] for r in mine] == ["gateway; fwd=bypass"] * 2
    assert all("age" not in r.headers for r in mine)
    assert catalog.reads(path) == 3
    assert catalog.last(path)["authorization"].startswith("Bearer ")
    assert _counted_since(before) == {"miss": 1, "bypass": 2}


@pytest.mark.parametrize(
    ("cache_control", "headers"),
    [
        ("private, max-age=60", {}),
        ("no-store", {}),
        ("public, no-cache, max-age=60", {}),
        ("public, s-maxage=60", {"Set-Cookie": "session=alice"}),
        ("public, s-maxage=60", {"Vary": "*"}),
        ("public", {}),  # no lifetime
    ],
)
async def test_answers_a_shared_cache_may_not_keep_are_not_stored(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    cache_control: str,
    headers: dict[str, str],
) -> None:
    catalog.cache_control, catalog.headers = cache_control, headers
    product = catalog.add()
    async with cached_gateway() as gateway:
        answers = [await gateway.get(f"/v1/products/{product}") for _ in range(2)]
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.headers["cache-status"] for r in answers] == ["gateway; fwd=miss"] * 2
    assert catalog.reads(f"/v1/products/{product}") == 2


async def test_vary_keeps_each_variant_apart(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    catalog.headers = {"Vary": "Accept-Language"}
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with cached_gateway() as gateway:
        english = await gateway.get(path, headers={"Accept-Language": "en"})
        german = await gateway.get(path, headers={"Accept-Language": "de"})
        english_again = await gateway.get(path, headers={"Accept-Language": "en"})
        german_again = await gateway.get(path, headers={"Accept-Language": "de"})
        unnamed = await gateway.get(path)
    assert [english.json()["lang"], german.json()["lang"]] == ["en", "de"]
    assert english_again.json()["lang"] == "en"
    assert german_again.json()["lang"] == "de"
    assert english_again.headers["cache-status"].startswith("gateway; hit")
    assert german_again.headers["cache-status"].startswith("gateway; hit")
    assert unnamed.json()["lang"] == ""
    assert catalog.reads(path) == 3  # en, de and none: one each


async def test_concurrent_misses_send_one_request_upstream(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    catalog.delay = 0.3  # the first miss is still in flight when the others arrive
    product = catalog.add()
    before = _results()
    async with cached_gateway() as gateway:
        answers = await asyncio.gather(*(gateway.get(f"/v1/products/{product}") for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert {r.json()["id"] for r in answers} == {product}
    assert catalog.reads(f"/v1/products/{product}") == 1
    assert _counted_since(before) == {"miss": 1, "coalesced": 19}
    statuses = sorted(r.headers["cache-status"] for r in answers)
    assert statuses.count("gateway; fwd=miss; collapsed; stored") == 19


async def test_a_private_answer_is_not_shared_with_concurrent_requests(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    catalog.delay, catalog.cache_control = 0.2, "private, max-age=60"
    product = catalog.add()
    async with cached_gateway() as gateway:
        answers = await asyncio.gather(*(gateway.get(f"/v1/products/{product}") for _ in range(5)))
    assert [r.status_code for r in answers] == [200] * 5
    assert catalog.reads(f"/v1/products/{product}") == 5  # each asked for itself


async def test_a_stale_copy_is_served_while_one_request_revalidates_it(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    catalog.cache_control = "public, max-age=1, stale-while-revalidate=30"
    product = catalog.add()
    path = f"/v1/products/{product}"
    before = _results()
    async with cached_gateway() as gateway:
        first = await gateway.get(path)
        await asyncio.sleep(1.1)
        stale = await gateway.get(path)
        assert stale.status_code == 200
        assert stale.headers["cache-status"].startswith("gateway; hit; ttl=-")
        assert int(stale.headers["age"]) >= 1
        # One conditional request in the background; the upstream's 304 refreshes the copy.
        await eventually(lambda: catalog.reads(path) == 2, timeout=5)
        assert catalog.last(path)["if-none-match"] == first.headers["etag"]

        async def fresh_again() -> bool:
            answer = await gateway.get(path)
            return (
                answer.headers["cache-status"].startswith("gateway; hit; ttl=")
                and int(answer.headers["age"]) == 0
            )

        await eventually(fresh_again, timeout=5)
    assert catalog.reads(path) == 2
    counted = _counted_since(before)
    assert counted["miss"] == 1
    assert counted["stale"] >= 1


async def test_no_cache_asks_the_upstream_and_no_store_leaves_the_cache_alone(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with cached_gateway() as gateway:
        passed = await gateway.get(path, headers={"Cache-Control": "no-cache, no-store"})
        stored = await gateway.get(path)
        catalog.products[product]["price_cents"] = 2000  # changed behind the cache's back
        cached = await gateway.get(path)
        revalidated = await gateway.get(path, headers={"Cache-Control": "no-cache"})
        refreshed = await gateway.get(path)
    assert passed.headers["cache-status"] == "gateway; fwd=request"
    assert stored.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert cached.json()["price_cents"] == 1000
    assert revalidated.headers["cache-status"] == "gateway; fwd=request; stored"
    assert revalidated.json()["price_cents"] == 2000
    assert refreshed.json()["price_cents"] == 2000
    assert catalog.reads(path) == 3


async def test_redis_unreachable_the_cache_fails_open_and_counts_it(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    closed_port_url: str,
) -> None:
    product = catalog.add()
    lookups_failed = REGISTRY.get_sample_value(
        "gateway_cache_errors_total", {"operation": "lookup"}
    )
    before = _results()
    redis_url = closed_port_url.replace("http://", "redis://") + "/0"
    async with cached_gateway(redis_url=redis_url) as gateway:
        answers = [await gateway.get(f"/v1/products/{product}") for _ in range(3)]
    assert [r.status_code for r in answers] == [200] * 3
    assert all(r.json()["id"] == product for r in answers)
    assert answers[0].headers["cache-status"] == "gateway; fwd=miss; detail=unavailable"
    assert catalog.reads(f"/v1/products/{product}") == 3
    assert _counted_since(before) == {"unavailable": 3}
    after = REGISTRY.get_sample_value("gateway_cache_errors_total", {"operation": "lookup"})
    assert (after or 0) - (lookups_failed or 0) >= 1  # then left alone for a moment


async def test_a_write_through_the_gateway_purges_the_product_and_the_list(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    bearer: Bearer,
) -> None:
    product, other = catalog.add(), catalog.add()
    async with cached_gateway(cache_purge_settle_seconds=0) as gateway:
        for path in (f"/v1/products/{product}", f"/v1/products/{other}", "/v1/products?limit=2"):
            await gateway.get(path)
            assert (await gateway.get(path)).headers["cache-status"].startswith("gateway; hit")
        updated = await gateway.patch(
            f"/v1/products/{product}", json={"price_cents": 1500}, headers=bearer(sub="admin")
        )
        assert updated.status_code == 200
        read = await gateway.get(f"/v1/products/{product}")
        listed = await gateway.get("/v1/products?limit=2")
        untouched = await gateway.get(f"/v1/products/{other}")
    assert read.json()["price_cents"] == 1500
    assert read.headers["cache-status"] == "gateway; fwd=miss; stored"
    assert {p["id"]: p["price_cents"] for p in listed.json()["items"]}[product] == 1500
    assert untouched.headers["cache-status"].startswith("gateway; hit")


async def test_a_read_that_began_before_a_write_does_not_store_the_old_answer(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    bearer: Bearer,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with cached_gateway(cache_purge_settle_seconds=0) as gateway:
        catalog.delay = 0.5
        slow = asyncio.create_task(gateway.get(path))
        await eventually(lambda: catalog.reads(path) == 1, timeout=5)
        catalog.products[product]["price_cents"] = 1500  # committed while that read is out
        write = await gateway.patch(path, json={"name": "Desk lamp"}, headers=bearer(sub="admin"))
        assert write.status_code == 200
        old = await slow
        catalog.delay = 0.0
        after = await gateway.get(path)
    assert old.json()["name"] == "Lamp"  # read before the write: answered, not stored
    assert old.headers["cache-status"] == "gateway; fwd=miss"
    assert after.json()["name"] == "Desk lamp"
    assert after.headers["cache-status"] == "gateway; fwd=miss; stored"


async def test_just_after_a_purge_answers_are_not_stored_for_the_settle_time(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
    bearer: Bearer,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with cached_gateway(cache_purge_settle_seconds=30) as gateway:
        await gateway.get(path)
        await gateway.patch(path, json={"price_cents": 1}, headers=bearer(sub="admin"))
        answers = [await gateway.get(path) for _ in range(2)]
    # An upstream replica may still hold the old data: nothing is kept yet.
    assert [r.headers["cache-status"] for r in answers] == ["gateway; fwd=miss"] * 2
    assert all(r.json()["price_cents"] == 1 for r in answers)


async def test_a_refused_write_purges_nothing(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    path = f"/v1/products/{product}"
    async with cached_gateway(cache_purge_settle_seconds=0) as gateway:
        await gateway.get(path)
        refused = await gateway.patch(path, json={"price_cents": 1})  # no token: 401
        cached = await gateway.get(path)
    assert refused.status_code == 401
    assert cached.headers["cache-status"].startswith("gateway; hit")


async def test_caching_off_forwards_every_read(
    cached_gateway: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
    catalog: FakeCatalog,
) -> None:
    product = catalog.add()
    async with cached_gateway(cache_enabled=False) as gateway:
        answers = [await gateway.get(f"/v1/products/{product}") for _ in range(2)]
    assert all("cache-status" not in r.headers for r in answers)
    assert catalog.reads(f"/v1/products/{product}") == 2
