"""The expand/contract check: a destructive upgrade needs an explicit contract marker."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from migration_lint import Finding, NoMigrationsError, check_source, migration_files, run
from migration_lint.sql import destructive_statements

PATH = Path("versions/2026_12_01_0000_0003_change.py")
CONTRACT = 'migration_phase = "contract"\ncontract_reason = "unread since release 2026.12"'


def migration(upgrade: str, *, module: str = "", downgrade: str = 'op.drop_table("t")') -> str:
    """A complete migration file around the given bodies (and extra module-level code)."""
    body = "\n".join(
        [
            "import sqlalchemy as sa",
            "from alembic import op",
            "from chassis.messaging.tables import drop_outbox",
            'revision = "0003"',
            'down_revision = "0002"',
            textwrap.dedent(module),
            "def upgrade() -> None:",
            textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            "",
            "def downgrade() -> None:",
            textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        ]
    )
    return body + "\n"


def check(source: str) -> list[Finding]:
    return check_source(source, PATH)


def messages(source: str) -> str:
    return "\n".join(str(f) for f in check(source))


DESTRUCTIVE = {
    "drop table": ('op.drop_table("legacy")', "drops a table"),
    "drop column": ('op.drop_column("orders", "legacy_total")', "drops a column"),
    "drop index": ('op.drop_index("ix_orders_ref", table_name="orders")', "drops an index"),
    "drop constraint": ('op.drop_constraint("uq_orders_ref", "orders")', "drops a constraint"),
    "rename table": ('op.rename_table("orders", "purchases")', "renames a table"),
    "rename column": (
        'op.alter_column("orders", "total", new_column_name="total_cents")',
        "renames a column",
    ),
    "type change": ('op.alter_column("orders", "note", type_=sa.String(50))', "column's type"),
    "set not null": (
        'op.alter_column("orders", "note", nullable=False)',
        "NOT NULL without a server_default",
    ),
    "set not null, default removed": (
        'op.alter_column("orders", "note", nullable=False, server_default=None)',
        "NOT NULL without a server_default",
    ),
    "drop default": ('op.alter_column("orders", "status", server_default=None)', "default"),
    "add not null column": (
        'op.add_column("orders", sa.Column("ref", sa.Text(), nullable=False))',
        "adds a NOT NULL column without a server_default",
    ),
    "add primary key column": (
        'op.add_column("orders", sa.Column("seq", sa.Integer(), primary_key=True))',
        "adds a NOT NULL column",
    ),
    "batch drop column": (
        'with op.batch_alter_table("orders") as batch:\n    batch.drop_column("legacy")',
        "drops a column",
    ),
    "sql drop column": ('op.execute("ALTER TABLE orders DROP COLUMN legacy")', "runs DROP COLUMN"),
    "sql drop, no COLUMN keyword": (
        'op.execute("ALTER TABLE orders DROP IF EXISTS legacy")',
        "runs DROP COLUMN",
    ),
    "sql drop table in text()": ('op.execute(sa.text("drop table legacy"))', "runs DROP TABLE"),
    "sql rename": ('op.execute("ALTER TABLE orders RENAME TO purchases")', "runs RENAME"),
    "sql set not null": (
        'op.execute("ALTER TABLE orders ALTER COLUMN note SET NOT NULL")',
        "runs SET NOT NULL",
    ),
    "sql type change": (
        'op.execute("ALTER TABLE orders ALTER COLUMN note TYPE varchar(10)")',
        "runs ALTER COLUMN TYPE",
    ),
    "sql truncate": ('op.execute("TRUNCATE orders")', "runs TRUNCATE"),
    "sql delete": ("op.execute(\"DELETE FROM orders WHERE status = 'x'\")", "runs DELETE FROM"),
    "sql in an f-string": ('op.execute(f"DROP TABLE {SCHEMA}.legacy")', "runs DROP TABLE"),
    "sql through the connection": (
        'op.get_bind().execute(sa.text("DROP INDEX ix_orders_ref"))',
        "runs DROP INDEX",
    ),
    "sql delete construct": (
        'op.execute(sa.delete(orders_table).where(orders_table.c.status == "x"))',
        "deletes rows",
    ),
    "imported drop helper": ('drop_outbox(op, "orders")', "calls a helper that drops"),
    "unreadable sql": ("op.execute(build_statement())", "runs SQL the check cannot read"),
}


@pytest.mark.parametrize(("upgrade", "expected"), DESTRUCTIVE.values(), ids=DESTRUCTIVE.keys())
def test_a_destructive_upgrade_operation_is_refused(upgrade: str, expected: str) -> None:
    findings = check(migration(upgrade, module='SCHEMA = "orders"'))

    assert len(findings) == 1, findings
    assert expected in findings[0].message


@pytest.mark.parametrize(("upgrade", "expected"), DESTRUCTIVE.values(), ids=DESTRUCTIVE.keys())
def test_the_contract_marker_with_a_reason_allows_each_destructive_operation(
    upgrade: str, expected: str
) -> None:
    assert check(migration(upgrade, module=f'SCHEMA = "orders"\n{CONTRACT}')) == []


def test_a_finding_names_the_file_line_operation_and_how_to_mark_a_contract_step() -> None:
    source = migration(
        'op.create_table("t", sa.Column("id", sa.Integer()))\nop.drop_column("t", "x")'
    )
    line = source.splitlines().index('    op.drop_column("t", "x")') + 1

    (finding,) = check(source)

    assert str(finding).startswith(f"{PATH}:{line}:5: `op.drop_column('t', 'x')` drops a column")
    assert 'migration_phase = "contract"' in finding.message
    assert "contract_reason" in finding.message


def test_module_helpers_called_by_upgrade_are_followed_to_the_line_that_drops() -> None:
    module = """
        def _cleanup(operations) -> None:
            operations.drop_column("orders", "legacy")

        def _unused() -> None:
            op.drop_table("never_called")
    """
    source = migration("_cleanup(op)", module=module)
    line = source.splitlines().index('    operations.drop_column("orders", "legacy")') + 1

    findings = check(source)

    assert [(f.line, "drops a column" in f.message) for f in findings] == [(line, True)]


def test_sql_read_from_a_module_constant_is_checked() -> None:
    source = migration("op.execute(CLEANUP)", module='CLEANUP = "DROP TABLE legacy"')

    assert "runs DROP TABLE" in messages(source)


SAFE = {
    "create table": """
        op.create_table(
            "t",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("renamed_at", sa.DateTime(), nullable=False),
        )
        op.create_index("ix_t_renamed_at", "t", ["renamed_at"])
    """,
    "add nullable column": 'op.add_column("orders", sa.Column("note", sa.Text()))',
    "add not null column with a server default": (
        'op.add_column("orders", sa.Column("n", sa.Integer(), nullable=False, server_default="0"))'
    ),
    "add identity column": (
        'op.add_column("t", sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False))'
    ),
    "relax not null": 'op.alter_column("orders", "note", nullable=True)',
    "set not null with a default": (
        'op.alter_column("orders", "note", nullable=False, server_default="")'
    ),
    "sql relax not null": 'op.execute("ALTER TABLE orders ALTER COLUMN note DROP NOT NULL")',
    "sql words inside literals and comments": (
        "op.execute(\"UPDATE orders SET status = 'drop table' -- rename later\")"
    ),
    "sql create index": 'op.execute("CREATE INDEX CONCURRENTLY ix_a ON orders (a)")',
    "sql update construct": 'op.execute(sa.update(orders_table).values(status="x"))',
    "data backfill": "op.execute(\"UPDATE orders SET currency = 'EUR' WHERE currency IS NULL\")",
}


@pytest.mark.parametrize("upgrade", SAFE.values(), ids=SAFE.keys())
def test_an_expand_step_passes(upgrade: str) -> None:
    assert check(migration(upgrade)) == []


def test_downgrade_is_not_checked_for_destructive_operations() -> None:
    source = migration(
        'op.add_column("orders", sa.Column("note", sa.Text()))',
        downgrade="""
            op.drop_column("orders", "note")
            op.drop_table("legacy")
            op.execute("DROP INDEX ix_orders_note")
        """,
    )

    assert check(source) == []


@pytest.mark.parametrize(
    "marker",
    [
        'migration_phase = "contract"',
        'migration_phase = "contract"\ncontract_reason = "   "',
        'migration_phase = "contract"\ncontract_reason = REASONS["0003"]',
        'migration_phase = "contract"\ncontract_reason = "<why no running release needs it>"',
    ],
    ids=["no reason", "blank reason", "reason not a literal", "template placeholder"],
)
def test_a_contract_marker_without_a_reason_is_refused(marker: str) -> None:
    found = messages(migration('op.drop_column("orders", "legacy")', module=marker))

    assert "a contract step needs a reason" in found
    assert "drops a column" in found  # not exempt until the reason is given


def test_a_misspelt_phase_is_refused_and_exempts_nothing() -> None:
    found = messages(migration('op.drop_table("t")', module='migration_phase = "contracted"'))

    assert 'migration_phase must be the literal "expand" or "contract"' in found
    assert "drops a table" in found


def test_a_reason_without_the_contract_phase_is_refused() -> None:
    source = migration('op.drop_table("t")', module='contract_reason = "unused since 2026.12"')

    assert 'contract_reason is only meaningful with `migration_phase = "contract"`' in messages(
        source
    )


def test_an_explicit_expand_phase_is_checked_like_the_default() -> None:
    source = migration('op.drop_table("t")', module='migration_phase = "expand"')

    assert "drops a table" in messages(source)


def test_an_annotated_marker_counts() -> None:
    module = 'migration_phase: str = "contract"\ncontract_reason: str = "unused since 2026.12"'

    assert check(migration('op.drop_table("t")', module=module)) == []


@pytest.mark.parametrize(
    "downgrade",
    ["pass", '"""Irreversible."""', "raise NotImplementedError", "..."],
)
def test_a_downgrade_that_does_nothing_after_a_real_upgrade_is_refused(downgrade: str) -> None:
    source = migration('op.create_table("t", sa.Column("id", sa.Integer()))', downgrade=downgrade)
    line = source.splitlines().index("def downgrade() -> None:") + 1

    (finding,) = check(source)

    assert finding.line == line
    assert "downgrade() does nothing" in finding.message


def test_a_baseline_whose_upgrade_and_downgrade_both_do_nothing_passes() -> None:
    assert check(migration("pass", downgrade="pass")) == []


def test_a_migration_without_downgrade_or_upgrade_is_refused() -> None:
    source = 'revision = "0003"\ndown_revision = "0002"\n'

    found = messages(source)

    assert "no upgrade() function" in found
    assert "no downgrade() function" in found


def test_a_file_that_is_not_a_migration_or_not_python_is_reported() -> None:
    assert "not an Alembic migration" in messages("def upgrade() -> None:\n    pass\n")
    assert "not valid Python" in messages("def upgrade(:\n")


def test_directories_are_expanded_to_their_migrations_and_an_empty_one_is_an_error(
    tmp_path: Path,
) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    with pytest.raises(NoMigrationsError, match="no migrations in"):
        migration_files([versions])
    (versions / "__init__.py").write_text("")
    (versions / "0001_a.py").write_text(migration("pass", downgrade="pass"))

    assert migration_files([versions]) == [versions / "0001_a.py"]


def test_run_exits_1_listing_problems_0_when_clean_and_2_for_a_path_without_migrations(
    tmp_path: Path,
) -> None:
    clean, unsafe = tmp_path / "clean", tmp_path / "unsafe"
    clean.mkdir()
    unsafe.mkdir()
    (clean / "0001_ok.py").write_text(migration("pass", downgrade="pass"))
    (unsafe / "0002_drop.py").write_text(migration('op.drop_column("orders", "legacy")'))
    out = io.StringIO()

    assert run([clean], out) == 0
    assert run([clean, unsafe], out) == 1
    assert run([tmp_path / "missing"], out) == 2
    report = out.getvalue()
    assert f"{unsafe / '0002_drop.py'}:" in report
    assert "migration check: 2 migration(s), 1 problem(s)" in report
    assert "no migrations in" in report
    assert "Expand/contract: add the new shape next to the old one first" in report


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER TABLE t DROP COLUMN c", ["DROP COLUMN"]),
        ("alter table t drop c, drop constraint k", ["DROP COLUMN", "DROP CONSTRAINT"]),
        ("DROP MATERIALIZED VIEW v", ["DROP MATERIALIZED VIEW"]),
        ("ALTER TABLE t ALTER c DROP DEFAULT", ["DROP DEFAULT"]),
        ('ALTER TABLE t ALTER COLUMN "c" SET DATA TYPE bigint', ["ALTER COLUMN TYPE"]),
        ("ALTER TABLE t ALTER c DROP NOT NULL", []),
        ("ALTER TYPE mood ADD VALUE 'meh'", []),
        ("/* drop table t */ SELECT 1 -- rename", []),
        ("INSERT INTO t VALUES ('it''s a DROP TABLE')", []),
    ],
)
def test_destructive_sql_statements_are_recognised(sql: str, expected: list[str]) -> None:
    assert destructive_statements(sql) == expected
