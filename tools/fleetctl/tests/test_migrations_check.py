"""`fleetctl migrations check`: every service's migrations pass the expand/contract check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from chassis.migrations import alembic_config
from fleetctl.__main__ import main
from fleetctl.stack import DB_SERVICES, ServiceSpec
from migration_lint import check_paths

VERSIONS = [s.directory / "alembic" / "versions" for s in DB_SERVICES]

DESTRUCTIVE = """
from alembic import op

revision = "0099"
down_revision = "0002"


def upgrade() -> None:
    op.drop_column("orders", "currency")


def downgrade() -> None:
    op.execute("SELECT 1")
"""


def fleetctl(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def test_every_service_migration_passes_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    migrations = sum(len(list(v.glob("[!_]*.py"))) for v in VERSIONS)

    code = fleetctl("migrations", "check")

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{migrations} migration(s), no problems" in out
    assert migrations >= 2 * len(VERSIONS)


def test_a_destructive_migration_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "2026_12_01_0000_0099_drop_currency.py"
    broken.write_text(DESTRUCTIVE)

    code = fleetctl("migrations", "check", *map(str, VERSIONS), str(tmp_path))

    out = capsys.readouterr().out
    assert code == 1
    assert f"{broken}:9:5: `op.drop_column('orders', 'currency')` drops a column" in out
    assert "downgrade() does nothing" not in out


def test_the_migration_lint_module_runs_the_same_check_from_the_command_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "0099_drop.py").write_text(DESTRUCTIVE)

    clean = subprocess.run(
        [sys.executable, "-m", "migration_lint", *map(str, VERSIONS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    dirty = subprocess.run(
        [sys.executable, "-m", "migration_lint", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert (clean.returncode, dirty.returncode) == (0, 1), clean.stdout + dirty.stdout
    assert "drops a column" in dirty.stdout


@pytest.mark.parametrize("service", DB_SERVICES, ids=lambda s: s.name)
def test_a_migration_generated_from_the_service_template_passes_and_shows_the_marker(
    service: ServiceSpec, tmp_path: Path
) -> None:
    shutil.copy(service.directory / "alembic.ini", tmp_path)
    (tmp_path / "alembic" / "versions").mkdir(parents=True)
    shutil.copy(service.directory / "alembic" / "script.py.mako", tmp_path / "alembic")

    command.revision(alembic_config(tmp_path), message="add a note", rev_id="0001")

    (generated,) = (tmp_path / "alembic" / "versions").glob("*.py")
    assert check_paths([generated])[1] == []
    assert '# migration_phase = "contract"' in generated.read_text()
