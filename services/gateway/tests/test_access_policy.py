"""The route table: which routes need a caller, which are password attempts, how they are routed."""

from __future__ import annotations

import pytest

from gateway.routes import proxied_routes, public_route, requires_caller


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


@pytest.mark.parametrize(
    ("method", "path", "is_login"),
    [
        ("POST", "/v1/auth/token", True),
        ("POST", "/v1/auth//token/", True),
        ("post", "/v1/auth/token", True),
        ("GET", "/v1/auth/token", False),
        ("POST", "/v1/auth/register", False),
        ("POST", "/v1/orders", False),
    ],
)
def test_password_attempts_spend_the_login_budget(method: str, path: str, is_login: bool) -> None:
    assert public_route(path).rates.is_login(method.upper()) is is_login


def test_routes_under_a_catch_all_share_its_http_route() -> None:
    # The templates are the `route` label of request metrics, which dashboards and alerts query.
    assert [route.template for route in proxied_routes()] == [
        "/v1/auth/{rest:path}",
        "/v1/products",
        "/v1/products/{rest:path}",
        "/v1/orders",
        "/v1/orders/exports",
        "/v1/orders/exports/{rest:path}",
        "/v1/orders/{rest:path}",
        "/v1/webhooks/{rest:path}",
        "/v1/admin/reconciliations",
    ]
