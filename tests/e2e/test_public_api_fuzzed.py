"""The public API fuzzed with Schemathesis, through the gateway and against each service.

Every documented operation gets generated requests (valid and invalid) with a customer's token;
then the stateful phase chains calls through the links Schemathesis infers from the documents
(register → token, place an order → read and cancel it, subscribe → list deliveries). Each answer
must not be a server error and must conform to the document: a documented status, the documented
content type, a body matching the documented schema. Bounded by example counts, not by luck.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from e2e_support import Receiver, RunningFleet, register_and_login
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

pytestmark = pytest.mark.e2e

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30
STATEFUL_RUNS = 25  # sequences of calls
# The gateway's document holds every service's operations: the chains it must reach compete with
# four times as many operations as one service's, so it gets more sequences.
STATEFUL_RUNS_OF = {"gateway": 60}
STATEFUL_STEPS = 8  # calls in one sequence, at most
BOUNDED = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
    database=None,
)


@dataclass
class Fuzzed:
    failures: list[str]
    # (method, path template, status) of every call of the stateful phase
    stateful_calls: list[tuple[str, str, int]]


def _fuzz(base_url: str, token: str, product: str, hook: str, runs: int) -> Fuzzed:
    """Every operation's generated cases, then the stateful phase; the failures, described."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    failures: dict[tuple[str, str], str] = {}  # (operation, what failed) -> one example
    stateful_calls: list[tuple[str, str, int]] = []

    def record(case: Any, response: Any, stateful: bool = False) -> None:
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in found:
                title = getattr(failure, "title", type(failure).__name__)
                label = f"{'stateful ' if stateful else ''}{case.method} {case.path}"
                failures.setdefault((label, title), f"{label}: {failure}"[:1500])

    def check(case: Any) -> None:
        record(case, case.call(base_url=base_url, headers=headers, timeout=10))

    for result in schema.get_all_operations():
        if isinstance(result, Err):  # a part of the document schemathesis cannot read
            raise result.err()
        operation = result.ok()
        test: Callable[[], None] = BOUNDED(given(case=operation.as_strategy())(check))
        try:
            test()
        except Unsatisfiable:
            failures[(operation.label, "unsatisfiable")] = "no request could be generated"

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        """Calls chained by the links Schemathesis infers. Where an operation needs a value no
        link can carry (a product that exists, a webhook URL that may be called, the password of
        the account just registered), the client puts it in, as a real client would."""

        def setup(self) -> None:
            self.registered: list[dict[str, str]] = []

        def before_call(self, case: Any) -> None:
            if case.method == "POST" and case.path == "/v1/orders":
                case.body = {"items": [{"product_id": product, "quantity": 1}]}
                case.headers = {**(case.headers or {}), "Idempotency-Key": uuid.uuid4().hex}
            elif case.method == "POST" and case.path == "/v1/webhooks/subscriptions":
                case.body = {"url": hook, "events": ["order.confirmed.v1"]}
            elif case.method == "POST" and case.path == "/v1/auth/register":
                email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
                case.body = {"email": email, "password": "correct horse battery"}
            elif case.method == "POST" and case.path == "/v1/auth/token" and self.registered:
                account = self.registered[-1]
                case.body = {"grant_type": "password", **account}

        def after_call(self, response: Any, case: Any) -> None:
            if case.path == "/v1/auth/register" and response.status_code == 201:
                self.registered.append(
                    {"username": case.body["email"], "password": case.body["password"]}
                )

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "headers": headers, "timeout": 10}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            stateful_calls.append((case.method, case.path, response.status_code))
            record(case, response, stateful=True)

    Workflow.run(
        settings=settings(
            max_examples=runs,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
    return Fuzzed(list(failures.values()), stateful_calls)


# Calls the stateful phase must have made successfully against each target, with values taken
# from earlier answers (an order read back by the id its placement returned).
STATEFUL_CHAINS: dict[str, list[tuple[str, str]]] = {
    "gateway": [
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/token"),
        ("POST", "/v1/orders"),
        ("GET", "/v1/orders/{order_id}"),
    ],
    "orders": [("POST", "/v1/orders"), ("GET", "/v1/orders/{order_id}")],
    "auth": [("POST", "/v1/auth/register"), ("POST", "/v1/auth/token")],
    "catalog": [],
    "worker": [("POST", "/v1/webhooks/subscriptions")],
}


@pytest.fixture(scope="module")
async def product(running_fleet: RunningFleet) -> str:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        return str((await client.get("/v1/products", params={"limit": 1})).json()["items"][0]["id"])


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    """A subscriber that takes every delivery at once: the hundreds of deliveries the stateful
    phase causes are done when it is, and leave no retry backlog to slow later tests down."""
    with Receiver() as receiver:
        yield receiver.url


@pytest.fixture(scope="module")
async def token(running_fleet: RunningFleet) -> str:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        return (await register_and_login(client))["access_token"]


async def test_the_gateway_serves_the_public_api_document_with_its_edge_answers(
    running_fleet: RunningFleet,
) -> None:
    async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    paths = document["paths"]
    # Every service's public operations, under their public paths, and nothing internal.
    for path in ("/v1/auth/token", "/v1/products/{product_id}", "/v1/orders", "/v1/bff/home"):
        assert path in paths, sorted(paths)
    assert "/v1/webhooks/subscriptions" in paths
    assert all(p.startswith("/v1/") for p in paths), sorted(paths)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    place = paths["/v1/orders"]["post"]
    assert place["security"] == [{"bearer": []}]
    assert {"401", "413", "429", "503"} <= set(place["responses"])
    problem = place["responses"]["429"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert paths["/v1/products"]["get"]["security"] == [{}, {"bearer": []}]


@pytest.mark.parametrize("target", ["gateway", "auth", "catalog", "orders", "worker"])
async def test_fuzzed_requests_get_documented_answers_and_never_a_server_error(
    running_fleet: RunningFleet, token: str, product: str, hook: str, target: str
) -> None:
    runs = STATEFUL_RUNS_OF.get(target, STATEFUL_RUNS)
    url = running_fleet.stack.url(target)
    fuzzed = await asyncio.to_thread(_fuzz, url, token, product, hook, runs)
    failures = fuzzed.failures
    assert failures == [], f"{len(failures)} distinct failures:\n\n" + "\n\n".join(failures)
    # The stateful phase really chained calls: it created what later calls used.
    answered = {(method, path) for method, path, status in fuzzed.stateful_calls if status < 300}
    for call in STATEFUL_CHAINS[target]:
        assert call in answered, (call, collections.Counter(fuzzed.stateful_calls))
