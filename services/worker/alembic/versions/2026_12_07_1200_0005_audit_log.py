"""The audit trail of webhook subscription changes (`chassis.audit`): creations, deletions,
pauses, resumes, secret rotations and redeliveries, append-only (a trigger refuses UPDATE,
TRUNCATE and the DELETE of a row younger than a day; the retention purge deletes older ones).

Expand only: a new table the running release does not know.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from chassis.audit import create_audit_log, drop_audit_log

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "worker"


def upgrade() -> None:
    create_audit_log(op, SCHEMA)


def downgrade() -> None:
    drop_audit_log(op, SCHEMA)
