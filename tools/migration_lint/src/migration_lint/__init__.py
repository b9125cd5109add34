"""Expand/contract safety of Alembic migrations, checked statically (nothing is executed).

During a rollout the previous release keeps running against the migrated schema, so a migration
may only *expand* it: add tables, nullable columns, columns with a server default, indexes. What
the running release breaks on, or what loses data (drop, rename, retype, NOT NULL without a
default, deleting rows), belongs in a *contract* step shipped after the release that stopped
needing it, and must say so at module level:

    migration_phase = "contract"
    contract_reason = "orders.legacy_total unread since release 2026.12 (replaced by total_cents)"

Only `upgrade()` is checked: a `downgrade()` removes what its upgrade added. Every migration must
have a `downgrade()` that does something, unless its `upgrade()` does nothing either.
"""

from migration_lint.check import (
    NoMigrationsError,
    check_file,
    check_paths,
    check_source,
    migration_files,
)
from migration_lint.cli import run
from migration_lint.findings import Finding

__all__ = [
    "Finding",
    "NoMigrationsError",
    "check_file",
    "check_paths",
    "check_source",
    "migration_files",
    "run",
]
