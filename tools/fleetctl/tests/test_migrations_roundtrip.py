"""Every service's migrations are reversible on a real Postgres: going down and up again rebuilds
exactly the schema the first upgrade built (tables, columns with types, nullability and defaults,
indexes, constraints, sequences), in one go and one revision at a time. Each test migrates a
database of its own, dropped afterwards."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from fleetctl.bootstrap import drop_database, ensure_database, ensure_roles_and_schemas
from fleetctl.migration_roundtrip import MigrationRoundTrip, RoundTripError
from fleetctl.schema_snapshot import read_schema
from fleetctl.stack import DB_SERVICES, Stack, spec
from fleetctl.testing import FleetDatabase, unique_suffix

pytestmark = pytest.mark.integration

SERVICES = [s.name for s in DB_SERVICES]


@pytest.fixture
def scratch(base_stack: Stack) -> Iterator[Stack]:
    """A database of this test's own, with every service's role and (empty) schema."""
    stack = base_stack.with_(database=f"fleet_test_{unique_suffix()}", fleet_env="test")
    asyncio.run(ensure_database(stack))
    try:
        asyncio.run(ensure_roles_and_schemas(stack))
        yield stack
    finally:
        asyncio.run(drop_database(stack))


@pytest.mark.parametrize("service", SERVICES)
def test_downgrade_to_base_and_upgrade_again_rebuilds_the_same_schema(
    scratch: Stack, service: str
) -> None:
    MigrationRoundTrip.of_service(scratch, service).full()


@pytest.mark.parametrize("service", SERVICES)
def test_each_revision_downgrades_and_upgrades_back_to_the_same_schema(
    scratch: Stack, service: str
) -> None:
    MigrationRoundTrip.of_service(scratch, service).stepwise()


# The round trip itself must fail on broken downgrades, or the tests above prove nothing.

ENV = """
from alembic import context
from sqlalchemy import MetaData

from chassis.migrations import run_env

run_env(metadata=MetaData(), schema="orders", url=context.config.attributes["database_url"])
"""


def alembic_project(root: Path, migrations: dict[str, tuple[str, str]]) -> Path:
    """An Alembic project migrating the `orders` schema: revision -> (upgrade, downgrade)."""
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    versions = root / "alembic" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic" / "env.py").write_text(ENV)
    previous = None
    for revision, (up, down) in migrations.items():
        (versions / f"{revision}.py").write_text(
            "import sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = {revision!r}\ndown_revision = {previous!r}\n\n"
            f"def upgrade() -> None:\n{textwrap.indent(textwrap.dedent(up).strip(), '    ')}\n\n"
            f"def downgrade() -> None:\n{textwrap.indent(textwrap.dedent(down).strip(), '    ')}\n"
        )
        previous = revision
    return root


def synthetic(stack: Stack, project: Path) -> MigrationRoundTrip:
    return MigrationRoundTrip(
        project, stack.database_url(spec("orders")), stack.admin_dsn, "orders"
    )


TABLE_T = """
    op.create_table(
        "t",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.Text(), server_default="new", nullable=False),
    )
"""


def test_a_downgrade_that_leaves_a_table_behind_fails_the_round_trip(
    scratch: Stack, tmp_path: Path
) -> None:
    project = alembic_project(
        tmp_path,
        {
            "0001": (TABLE_T, 'op.drop_table("t")'),
            "0002": (
                'op.create_table("u", sa.Column("id", sa.Integer()))',
                'op.execute("SELECT 1")',
            ),
        },
    )

    with pytest.raises(RoundTripError, match="after downgrading 0002 to base") as failed:
        synthetic(scratch, project).full()

    assert "relations u: unexpected" in str(failed.value)
    assert "columns u.id: unexpected (integer NULL)" in str(failed.value)


def test_a_downgrade_that_restores_a_default_differently_fails_step_by_step(
    scratch: Stack, tmp_path: Path
) -> None:
    project = alembic_project(
        tmp_path,
        {
            "0001": (TABLE_T, 'op.drop_table("t")'),
            "0002": (
                'op.alter_column("t", "status", server_default="pending")',
                'op.alter_column("t", "status", server_default="created")',
            ),
        },
    )
    round_trip = synthetic(scratch, project)
    # Head -> base -> head drops and recreates `t`, so it cannot see this; one step down does.
    round_trip.full()
    asyncio.run(_reset(scratch))

    with pytest.raises(RoundTripError, match="after downgrading 0002 differs") as failed:
        round_trip.stepwise()

    assert (
        "columns t.status: expected text NOT NULL DEFAULT 'new'::text, "
        "found text NOT NULL DEFAULT 'created'::text"
    ) in str(failed.value)


async def _reset(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.admin_dsn, timeout=5)
    try:
        await conn.execute("DROP SCHEMA orders CASCADE")
    finally:
        await conn.close()
    await ensure_roles_and_schemas(stack)


# The snapshot notices every kind of difference the round trip compares.


@pytest.fixture
async def snapshot_schema(fleet_database: FleetDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A schema of this test's own (`snapshot_<random>`, `search_path`), dropped afterwards."""
    schema = f"snapshot_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(fleet_database.stack.admin_dsn, timeout=5)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute(
            "CREATE TABLE t (id integer PRIMARY KEY, note text DEFAULT 'x', n integer NOT NULL,"
            " kind text CHECK (kind <> ''))"
        )
        await conn.execute("CREATE INDEX ix_t_n ON t (n) WHERE n > 0")
        await conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        yield conn
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


CHANGES = {
    "column type": ("ALTER TABLE t ALTER COLUMN note TYPE varchar(10)", "columns t.note"),
    "nullability": ("ALTER TABLE t ALTER COLUMN n DROP NOT NULL", "columns t.n"),
    "default": ("ALTER TABLE t ALTER COLUMN note SET DEFAULT 'y'", "columns t.note"),
    "added column": ("ALTER TABLE t ADD COLUMN extra integer", "columns t.extra: unexpected"),
    "dropped column": ("ALTER TABLE t DROP COLUMN kind", "columns t.kind: missing"),
    "index predicate": (
        "DROP INDEX ix_t_n; CREATE INDEX ix_t_n ON t (n) WHERE n > 1",
        "indexes ix_t_n: expected",
    ),
    "constraint": ("ALTER TABLE t ADD CONSTRAINT ck_t_n CHECK (n < 10)", "constraints t.ck_t_n"),
    "sequence": ("CREATE SEQUENCE s", "sequences s: unexpected"),
    "enum": ("CREATE TYPE mood AS ENUM ('ok')", "types mood: unexpected (ENUM ('ok'))"),
    "view": ("CREATE VIEW v AS SELECT id FROM t", "views v: unexpected"),
}


@pytest.mark.parametrize(("change", "expected"), CHANGES.values(), ids=CHANGES.keys())
async def test_the_snapshot_sees_each_kind_of_schema_change(
    snapshot_schema: asyncpg.Connection, change: str, expected: str
) -> None:
    schema = await snapshot_schema.fetchval("SELECT current_schema()")
    before = await read_schema(snapshot_schema, schema)
    await snapshot_schema.execute(change)

    differences = before.differences(await read_schema(snapshot_schema, schema))

    assert any(line.startswith(expected) for line in differences), differences


async def test_the_snapshot_is_stable_and_leaves_out_the_alembic_version_table(
    snapshot_schema: asyncpg.Connection,
) -> None:
    schema = await snapshot_schema.fetchval("SELECT current_schema()")

    first = await read_schema(snapshot_schema, schema)
    await snapshot_schema.execute("ALTER TABLE alembic_version ADD COLUMN extra integer")
    second = await read_schema(snapshot_schema, schema)

    assert first.differences(second) == []
    assert "alembic_version" not in first.sections["relations"]
    assert set(first.sections["relations"]) == {"t"}
