"""`chassis.migrations.revisions`: a service's history as one line, read from its scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chassis.migrations import MigrationHistoryError, revisions


def service_dir(tmp_path: Path, parents: dict[str, str | tuple[str, ...] | None]) -> Path:
    """An Alembic project whose revisions follow `parents` (revision -> its down_revision)."""
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    versions = tmp_path / "alembic" / "versions"
    versions.mkdir(parents=True)
    # File names deliberately out of order: the order comes from down_revision, not names.
    for number, (revision, down) in enumerate(reversed(parents.items())):
        (versions / f"{number}_{revision}.py").write_text(
            f"revision = {revision!r}\ndown_revision = {down!r}\n"
            "def upgrade() -> None:\n    pass\n"
            "def downgrade() -> None:\n    pass\n"
        )
    return tmp_path


def test_revisions_run_from_the_first_to_head(tmp_path: Path) -> None:
    directory = service_dir(tmp_path, {"a1": None, "b2": "a1", "c3": "b2"})

    assert revisions(directory) == ["a1", "b2", "c3"]


def test_two_heads_are_refused(tmp_path: Path) -> None:
    directory = service_dir(tmp_path, {"a1": None, "b2": "a1", "c3": "a1"})

    with pytest.raises(MigrationHistoryError, match="not one line"):
        revisions(directory)


def test_a_merge_revision_is_refused(tmp_path: Path) -> None:
    directory = service_dir(tmp_path, {"a1": None, "b2": "a1", "c3": "a1", "d4": ("b2", "c3")})

    with pytest.raises(MigrationHistoryError, match="not one line"):
        revisions(directory)
