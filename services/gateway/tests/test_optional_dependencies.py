"""The gateway image has no database, broker or object storage library (its
`fleet-chassis[redis]` leaves them out), so neither the gateway nor the chassis modules it uses
may load one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The `db`, `broker` and `storage` extras of the chassis, and the build-time tools no service
# ships.
ABSENT_FROM_THE_IMAGE = (
    "sqlalchemy",
    "asyncpg",
    "alembic",
    "aio_pika",
    "aiormq",
    "aioboto3",
    "aiobotocore",
    "botocore",
)
BUILD_TOOLS = ("migration_lint", "contract_schemas")

LOADED = """
import json, sys
import chassis
import gateway.__main__
from gateway.main import build_app
from gateway.settings import GatewaySettings

build_app(GatewaySettings())
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    """Top-level modules loaded once the gateway's app is built, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_building_the_gateway_loads_no_database_broker_or_storage_library(
    loaded: set[str],
) -> None:
    assert loaded & set(ABSENT_FROM_THE_IMAGE) == set()


def test_building_the_gateway_loads_no_build_tool(loaded: set[str]) -> None:
    assert loaded & set(BUILD_TOOLS) == set()


def test_the_check_sees_what_the_gateway_does_load(loaded: set[str]) -> None:
    # The chassis, the gateway and the Redis client of its `redis` extra: the probe works.
    assert {"chassis", "gateway", "redis", "fastapi"} <= loaded
