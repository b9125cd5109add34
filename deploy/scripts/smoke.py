#!/usr/bin/env python3
"""Smoke test of a running fleet through its gateway, after a deployment or a rollback.

    deploy/scripts/smoke.py http://127.0.0.1:8000
    SMOKE_EMAIL=admin@example.com SMOKE_PASSWORD=... deploy/scripts/smoke.py https://api.example.com

Read-only checks that every service answers behind the gateway and that the public contract
holds: probes, the catalog (list and one product), the JWKS, problem+json errors with request
ids. With an existing account in SMOKE_EMAIL / SMOKE_PASSWORD it also logs in and reads through
auth, orders, worker and the BFF, then logs out again: the one refresh token it creates is
revoked, nothing else is written. The first checks are retried for `--wait` seconds, so a
port-forward or an ingress that is still coming up is not a failure.

Standard library only: it runs on any CI runner or laptop with Python 3.11+. Exit status 0 when
every check passes, 1 when one fails (each check prints one line either way).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROBLEM_JSON = "application/problem+json"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


class CheckFailedError(Exception):
    """A check saw something other than what the contract promises."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            msg = f"HTTP {self.status}: body is not JSON: {self.body[:200]!r}"
            raise CheckFailedError(msg) from exc


@dataclass
class Gateway:
    """A tiny HTTP client of the gateway; every request carries its own X-Request-ID."""

    base_url: str
    timeout: float
    token: str | None = None
    refresh_token: str | None = None
    account: dict[str, Any] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        bearer: bool = False,
    ) -> Response:
        request_id = f"smoke-{uuid.uuid4().hex}"
        headers = {"Accept": "application/json", "X-Request-ID": request_id}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if bearer:
            if self.token is None:
                msg = "no access token (the login check failed)"
                raise CheckFailedError(msg)
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.base_url.rstrip("/") + path
        # S310: the scheme is checked to be http(s) when the base URL is parsed (`main`).
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                response = Response(answer.status, _headers(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            response = Response(error.code, _headers(error.headers), error.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            msg = f"{method} {path}: no answer ({reason})"
            raise CheckFailedError(msg) from error
        echoed = response.headers.get("x-request-id")
        if echoed != request_id:
            msg = f"{method} {path}: X-Request-ID {request_id!r} came back as {echoed!r}"
            raise CheckFailedError(msg)
        return response


def _headers(message: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in message.items()}


def expect(response: Response, status: int, what: str) -> Response:
    if response.status != status:
        detail = response.body[:300].decode("utf-8", "replace")
        msg = f"{what}: expected HTTP {status}, got {response.status}: {detail}"
        raise CheckFailedError(msg)
    return response


def expect_problem(response: Response, status: int, what: str) -> None:
    """An RFC 9457 problem with the request id, as every error of the public API is."""
    expect(response, status, what)
    if response.content_type != PROBLEM_JSON:
        msg = f"{what}: content type {response.content_type!r}, expected {PROBLEM_JSON}"
        raise CheckFailedError(msg)
    problem = response.json()
    if problem.get("status") != status or not problem.get("request_id"):
        msg = f"{what}: not a problem document with status and request_id: {problem}"
        raise CheckFailedError(msg)


# Anonymous checks -------------------------------------------------------------------------------


def check_probes(gateway: Gateway) -> str:
    expect(gateway.request("GET", "/livez"), 200, "GET /livez")
    expect(gateway.request("GET", "/readyz"), 200, "GET /readyz")
    return "gateway live and ready"


def check_catalog(gateway: Gateway) -> str:
    page = expect(gateway.request("GET", "/v1/products?limit=1"), 200, "list products").json()
    if not isinstance(page.get("items"), list) or "next_cursor" not in page:
        msg = f"list products: not a page of products: {page}"
        raise CheckFailedError(msg)
    if not page["items"]:
        return "catalog answers (no products yet)"
    product_id = page["items"][0]["id"]
    product = expect(
        gateway.request("GET", f"/v1/products/{product_id}"), 200, "get one product"
    ).json()
    if product.get("id") != product_id or not isinstance(product.get("price_cents"), int):
        msg = f"get one product: unexpected body {product}"
        raise CheckFailedError(msg)
    expect_problem(
        gateway.request("GET", f"/v1/products/{UNKNOWN_ID}"), 404, "get an unknown product"
    )
    return f"catalog lists and reads products ({product.get('sku')})"


def check_jwks(gateway: Gateway) -> str:
    keys = expect(gateway.request("GET", "/v1/auth/jwks"), 200, "JWKS").json().get("keys")
    if not isinstance(keys, list) or not keys:
        msg = "JWKS: no signing keys published"
        raise CheckFailedError(msg)
    return f"auth publishes {len(keys)} signing key(s)"


def check_token_required(gateway: Gateway) -> str:
    expect_problem(gateway.request("GET", "/v1/auth/me"), 401, "GET /v1/auth/me without a token")
    return "a missing token is a 401 problem"


# Checks with an account -------------------------------------------------------------------------


def check_login(gateway: Gateway) -> str:
    email, password = gateway.account["email"], gateway.account["password"]
    form = {"grant_type": "password", "username": email, "password": password}
    tokens = expect(gateway.request("POST", "/v1/auth/token", form=form), 200, "login").json()
    if tokens.get("token_type") != "bearer" or not tokens.get("access_token"):
        msg = f"login: unexpected token response (keys {sorted(tokens)})"
        raise CheckFailedError(msg)
    gateway.token, gateway.refresh_token = tokens["access_token"], tokens.get("refresh_token")
    me = expect(gateway.request("GET", "/v1/auth/me", bearer=True), 200, "GET /v1/auth/me").json()
    if me.get("email") != email:
        msg = f"GET /v1/auth/me: signed in as {me.get('email')!r}, expected {email!r}"
        raise CheckFailedError(msg)
    return f"login and /me work for {email}"


def check_orders(gateway: Gateway) -> str:
    page = expect(
        gateway.request("GET", "/v1/orders?limit=1", bearer=True), 200, "list my orders"
    ).json()
    if not isinstance(page.get("items"), list):
        msg = f"list my orders: not a page: {page}"
        raise CheckFailedError(msg)
    return "orders lists the caller's orders"


def check_worker(gateway: Gateway) -> str:
    # A 404 problem can only come from the worker: the gateway routes /v1/webhooks/* there and
    # answers 502/503/504 itself when the worker is unreachable.
    path = f"/v1/webhooks/subscriptions/{UNKNOWN_ID}/deliveries"
    expect_problem(gateway.request("GET", path, bearer=True), 404, "an unknown subscription")
    return "worker answers webhook queries"


def check_bff(gateway: Gateway) -> str:
    screen = expect(gateway.request("GET", "/v1/bff/home", bearer=True), 200, "BFF home").json()
    if screen.get("degraded"):
        msg = f"BFF home: degraded parts {screen['degraded']}"
        raise CheckFailedError(msg)
    return "BFF home has every part"


def check_logout(gateway: Gateway) -> str:
    if not gateway.refresh_token:
        msg = "logout: the login returned no refresh token"
        raise CheckFailedError(msg)
    body = {"refresh_token": gateway.refresh_token}
    expect(gateway.request("POST", "/v1/auth/logout", body=body, bearer=True), 204, "logout")
    return "logout revokes the smoke test's refresh token"


Check = Callable[[Gateway], str]
ANONYMOUS: tuple[Check, ...] = (check_probes, check_catalog, check_jwks, check_token_required)
WITH_ACCOUNT: tuple[Check, ...] = (
    check_login,
    check_orders,
    check_worker,
    check_bff,
    check_logout,
)


def wait_until_ready(gateway: Gateway, wait_seconds: float) -> None:
    """Retry the probes until they pass or `wait_seconds` are over (then the failure counts)."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            check_probes(gateway)
        except CheckFailedError:
            time.sleep(1)
        else:
            return


def run(gateway: Gateway, checks: Sequence[Check], out: Callable[[str], None]) -> int:
    """Run every check (a failure does not stop the others); the number that failed."""
    failed = 0
    for check in checks:
        name = check.__name__.removeprefix("check_")
        started = time.monotonic()
        try:
            summary = check(gateway)
        except CheckFailedError as exc:
            failed += 1
            out(f"FAIL {name}: {exc}")
        else:
            out(f"ok   {name}: {summary} ({(time.monotonic() - started) * 1000:.0f} ms)")
    return failed


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(
        description="Smoke test of a running fleet through its gateway."
    )
    parser.add_argument("base_url", help="the gateway, e.g. http://127.0.0.1:8000")
    parser.add_argument("--timeout", type=float, default=10, help="seconds per request")
    parser.add_argument(
        "--wait", type=float, default=60, help="seconds to wait for the gateway to become ready"
    )
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.base_url).scheme not in {"http", "https"}:
        parser.error(f"not an http(s) URL: {args.base_url}")
    gateway = Gateway(base_url=args.base_url, timeout=args.timeout)
    checks = list(ANONYMOUS)
    email, password = env.get("SMOKE_EMAIL", ""), env.get("SMOKE_PASSWORD", "")
    if email and password:
        gateway.account = {"email": email, "password": password}
        checks += WITH_ACCOUNT
    else:
        print("note: SMOKE_EMAIL/SMOKE_PASSWORD not set: skipping the checks that need an account")
    wait_until_ready(gateway, args.wait)
    failed = run(gateway, checks, print)
    print(f"smoke test of {args.base_url}: {len(checks) - failed}/{len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
