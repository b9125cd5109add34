"""The table of routes that need a caller."""

from __future__ import annotations

import pytest

from gateway.access_policy import requires_caller


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/auth/me"),
        ("HEAD", "/v1/auth/me"),
        ("GET", "/v1/auth/me/"),
        ("GET", "/v1/auth//me"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/orders"),
        ("POST", "/v1/orders"),
        ("POST", "/v1/orders/0b7e/cancel"),
        ("GET", "/v1/orders/0b7e"),
        ("GET", "/v1/bff/home"),
        ("POST", "/v1/webhooks/subscriptions"),
        ("POST", "/v1/products"),
        ("PATCH", "/v1/products/0b7e"),
        ("DELETE", "/v1/products/0b7e"),
        ("post", "/v1/products"),
    ],
)
def test_routes_that_need_a_caller(method: str, path: str) -> None:
    assert requires_caller(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/token"),
        ("GET", "/v1/auth/jwks"),
        ("GET", "/v1/products"),
        ("HEAD", "/v1/products"),
        ("GET", "/v1/products/0b7e"),
        ("GET", "/v1/ordersx"),
        ("GET", "/v1/auth/logout"),
    ],
)
def test_routes_open_to_anonymous_callers(method: str, path: str) -> None:
    assert not requires_caller(method, path)
