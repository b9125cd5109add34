"""A test that needs a server is marked `integration` by the fixtures it uses, so
`pytest -m "not integration"` runs only tests that need none."""

from __future__ import annotations

import pytest

from fleetctl.testing import SERVER_FIXTURES

pytest_plugins = ["pytester"]

SUITE = """
import pytest


@pytest.fixture
def through_a_fixture(fleet_database):
    return fleet_database


def test_pure():
    pass


def test_asks_for_the_database(fleet_database):
    raise AssertionError("needs Postgres: must not run without integration tests")


def test_asks_through_another_fixture(through_a_fixture):
    raise AssertionError("needs Postgres: must not run without integration tests")


def test_asks_for_the_broker(broker_namespace):
    raise AssertionError("needs RabbitMQ: must not run without integration tests")


@pytest.mark.e2e
def test_end_to_end():
    raise AssertionError("needs the fleet: must not run without integration tests")
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makeini(
        "[pytest]\n"
        "asyncio_default_fixture_loop_scope = function\n"
        "markers =\n    integration: needs a server\n    e2e: the whole fleet\n"
    )
    pytester.makepyfile(test_suite=SUITE)
    return pytester.runpytest_inprocess("-p", "fleetctl.testing", "--strict-markers", *args)


def test_not_integration_runs_only_the_tests_that_use_no_server_fixture(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, "-m", "not integration")

    result.assert_outcomes(passed=1, deselected=4)


def test_integration_selects_every_test_that_needs_a_server(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "-m", "integration", "--collect-only", "-q")

    collected = {line.split("::")[-1] for line in result.outlines if "::" in line}
    assert collected == {
        "test_asks_for_the_database",
        "test_asks_through_another_fixture",
        "test_asks_for_the_broker",
        "test_end_to_end",
    }


def test_every_server_fixture_is_provided_by_the_shared_plugin_or_the_e2e_conftest() -> None:
    from fleetctl import testing  # noqa: PLC0415

    provided = {name for name in SERVER_FIXTURES if callable(getattr(testing, name, None))}
    assert SERVER_FIXTURES - provided == {"running_fleet"}  # tests/conftest.py
