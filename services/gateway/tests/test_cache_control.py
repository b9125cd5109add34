"""How the shared cache reads `Cache-Control`: what it may store and for how long, and what a
request asks of it."""

from __future__ import annotations

import pytest

from gateway.cache_control import Freshness, RequestDirectives, shared_freshness, vary_names


def _headers(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in fields.items()]


@pytest.mark.parametrize(
    ("cache_control", "freshness"),
    [
        ("public, max-age=5, s-maxage=30, stale-while-revalidate=30", Freshness(30, 30)),
        ("max-age=5", Freshness(5, 0)),  # no Authorization was sent: public is implied
        ('public, S-MaxAge="20"', Freshness(20, 0)),
        ("public, max-age=60, stale-while-revalidate=30, must-revalidate", Freshness(60, 0)),
        ("public, s-maxage=60, stale-while-revalidate=30, proxy-revalidate", Freshness(60, 0)),
        ("public, s-maxage=0, max-age=60", None),  # the shared lifetime rules, and it is none
        ("public, max-age=soon", None),
        ("private, max-age=60", None),
        ("public, max-age=60, no-store", None),
        ("public, no-cache, max-age=60", None),
    ],
)
def test_freshness_of_a_200(cache_control: str, freshness: Freshness | None) -> None:
    assert shared_freshness(200, _headers(cache_control=cache_control)) == freshness


def test_only_a_200_without_cookies_or_vary_star_is_stored() -> None:
    public = "public, max-age=60"
    assert shared_freshness(404, _headers(cache_control=public)) is None
    assert shared_freshness(200, _headers(cache_control=public, set_cookie="a=1")) is None
    assert shared_freshness(200, _headers(cache_control=public, vary="Accept, *")) is None
    assert shared_freshness(200, _headers(cache_control=public, vary="Accept")) is not None


def test_vary_names_are_lower_cased_sorted_and_unique() -> None:
    headers = [(b"vary", b"Accept-Language, accept"), (b"Vary", b"ACCEPT")]
    assert vary_names(headers) == ("accept", "accept-language")


@pytest.mark.parametrize(
    ("fields", "revalidate", "no_store"),
    [
        ({}, False, False),
        ({"cache_control": "no-cache"}, True, False),
        ({"cache_control": "max-age=0"}, True, False),
        ({"cache_control": "no-cache, no-store"}, True, True),
        ({"pragma": "no-cache"}, True, False),
        ({"pragma": "no-cache", "cache_control": "max-age=60"}, False, False),
    ],
)
def test_what_a_request_asks(fields: dict[str, str], revalidate: bool, no_store: bool) -> None:
    assert RequestDirectives.of(_headers(**fields)) == RequestDirectives(revalidate, no_store)
