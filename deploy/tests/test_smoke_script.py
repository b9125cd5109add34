"""`deploy/scripts/smoke.py` catches a broken deployment: run as the deploy workflow runs it,
against a stand-in gateway on loopback that keeps the public contract, then breaks it one way
at a time. (tests/e2e/test_deploy_smoke.py runs it against the real fleet.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleetctl.testing import serve_in_thread

SMOKE = Path(__file__).resolve().parents[2] / "deploy" / "scripts" / "smoke.py"
PRODUCT = {
    "id": "0b7c1d52-52c3-4c50-9e4e-2f7b4c0c9a11",
    "sku": "SKU-1",
    "name": "Kettle",
    "description": "",
    "price_cents": 2500,
    "currency": "EUR",
    "stock": 3,
}
EMAIL, PASSWORD = "smoke@example.com", "correct horse battery"


@dataclass
class Faults:
    """What the stand-in gateway gets wrong (nothing by default)."""

    not_ready: bool = False
    drops_request_id: bool = False
    degraded: list[str] = field(default_factory=list)


def stand_in_gateway(faults: Faults) -> Starlette:
    def answer(request: Request, body: object, status: int = 200) -> Response:
        media_type = "application/problem+json" if status >= 400 else "application/json"
        response = JSONResponse(body, status_code=status, media_type=media_type)
        if not faults.drops_request_id:
            response.headers["x-request-id"] = request.headers.get("x-request-id", "")
        return response

    def problem(request: Request, status: int) -> Response:
        return answer(request, {"status": status, "request_id": "r"}, status)

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer access"

    async def readyz(request: Request) -> Response:
        return problem(request, 503) if faults.not_ready else answer(request, {"status": "ok"})

    async def products(request: Request) -> Response:
        return answer(request, {"items": [PRODUCT], "next_cursor": None})

    async def product(request: Request) -> Response:
        if request.path_params["id"] != PRODUCT["id"]:
            return problem(request, 404)
        return answer(request, PRODUCT)

    async def token(request: Request) -> Response:
        form = await request.form()
        if (form.get("username"), form.get("password")) != (EMAIL, PASSWORD):
            return problem(request, 401)
        tokens = {"access_token": "access", "token_type": "bearer", "refresh_token": "refresh"}
        return answer(request, {**tokens, "expires_in": 900})

    async def me(request: Request) -> Response:
        if not authorised(request):
            return problem(request, 401)
        return answer(request, {"id": "u", "email": EMAIL, "roles": []})

    async def orders(request: Request) -> Response:
        return answer(request, {"items": [], "next_cursor": None})

    async def deliveries(request: Request) -> Response:
        return problem(request, 404)

    async def home(request: Request) -> Response:
        screen = {"featured": [PRODUCT], "recent_orders": [], "degraded": faults.degraded}
        return answer(request, screen)

    async def logout(request: Request) -> Response:
        response = Response(status_code=204)
        response.headers["x-request-id"] = request.headers.get("x-request-id", "")
        return response

    return Starlette(
        routes=[
            Route("/livez", lambda request: answer(request, {"status": "ok"})),
            Route("/readyz", readyz),
            Route("/v1/products", products),
            Route("/v1/products/{id}", product),
            Route("/v1/auth/jwks", lambda request: answer(request, {"keys": [{"kid": "k"}]})),
            Route("/v1/auth/token", token, methods=["POST"]),
            Route("/v1/auth/me", me),
            Route("/v1/auth/logout", logout, methods=["POST"]),
            Route("/v1/orders", orders),
            Route("/v1/webhooks/subscriptions/{id}/deliveries", deliveries),
            Route("/v1/bff/home", home),
        ]
    )


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def gateway_url(faults: Faults) -> Iterator[str]:
    with serve_in_thread(stand_in_gateway(faults)) as url:
        yield url


def smoke(url: str, *, account: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"SMOKE_EMAIL": EMAIL, "SMOKE_PASSWORD": PASSWORD} if account else {}
    return subprocess.run(
        [sys.executable, str(SMOKE), url, "--wait", "1", "--timeout", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def failed_checks(output: str) -> list[str]:
    failures = [line for line in output.splitlines() if line.startswith("FAIL ")]
    return [line.removeprefix("FAIL ").split(":")[0] for line in failures]


def test_smoke_passes_against_a_gateway_that_keeps_the_contract(gateway_url: str) -> None:
    result = smoke(gateway_url)
    assert result.returncode == 0, result.stdout
    assert "9/9 checks passed" in result.stdout


def test_smoke_without_an_account_runs_only_the_anonymous_checks(gateway_url: str) -> None:
    result = smoke(gateway_url, account=False)
    assert result.returncode == 0, result.stdout
    assert "4/4 checks passed" in result.stdout
    assert "skipping the checks that need an account" in result.stdout


def test_smoke_fails_when_the_gateway_never_becomes_ready(gateway_url: str, faults: Faults) -> None:
    faults.not_ready = True
    result = smoke(gateway_url)
    assert result.returncode == 1
    assert failed_checks(result.stdout) == ["probes"]


def test_smoke_fails_when_request_ids_are_not_echoed(gateway_url: str, faults: Faults) -> None:
    faults.drops_request_id = True
    result = smoke(gateway_url)
    assert result.returncode == 1
    assert "X-Request-ID" in result.stdout
    assert len(failed_checks(result.stdout)) == 9


def test_smoke_fails_when_the_bff_reports_a_degraded_part(gateway_url: str, faults: Faults) -> None:
    faults.degraded = ["recent_orders"]
    result = smoke(gateway_url)
    assert result.returncode == 1
    assert failed_checks(result.stdout) == ["bff"]


def test_smoke_fails_when_nothing_listens() -> None:
    with serve_in_thread(Starlette()) as url:
        pass  # the port is free again once the server stopped
    result = smoke(url)
    assert result.returncode == 1
    assert "no answer" in result.stdout


def test_smoke_refuses_a_url_that_is_not_http() -> None:
    result = smoke("file:///etc/passwd")
    assert result.returncode == 2
    assert "not an http(s) URL" in result.stderr
