"""The committed rules and runbooks are exactly what the generator makes from the SLO files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from slo_test_support import DEFINITIONS, REPO_ROOT, rule_files

from fleet_slo.__main__ import main
from fleet_slo.generate import REGENERATE, differences, render_all, write
from fleet_slo.runbooks import DEFINITIONS_DIR


def test_generation_is_deterministic() -> None:
    assert render_all(REPO_ROOT) == render_all(REPO_ROOT)


def test_committed_rules_and_runbooks_are_current() -> None:
    stale = differences(REPO_ROOT)
    assert not stale, f"generated SLO files are stale ({stale}); run: {REGENERATE}"


def test_every_service_with_an_slo_file_has_a_rule_manifest() -> None:
    services = sorted(path.stem for path in DEFINITIONS.glob("*.yaml"))
    assert services == ["auth", "catalog", "gateway", "orders", "worker"]
    assert [path.name for path in rule_files()] == [f"{s}-slo.yaml" for s in services]


def test_generate_into_a_fresh_tree_reproduces_the_committed_files(tmp_path: Path) -> None:
    shutil.copytree(DEFINITIONS, tmp_path / DEFINITIONS_DIR)
    written = write(tmp_path)
    assert written
    for relative in written:
        fresh = (tmp_path / relative).read_text(encoding="utf-8")
        committed = (REPO_ROOT / relative).read_text(encoding="utf-8")
        assert fresh == committed, f"{relative} differs; run: {REGENERATE}"


def test_check_command_reports_an_edited_file_and_the_command_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(DEFINITIONS, tmp_path / DEFINITIONS_DIR)
    write(tmp_path)
    assert main(["check", "--root", str(tmp_path)]) == 0
    edited = tmp_path / "deploy/k8s/monitoring/rules/orders-slo.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    assert main(["check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "out of date: deploy/k8s/monitoring/rules/orders-slo.yaml" in err
    assert "python -m fleet_slo generate" in err


def test_generate_prunes_files_of_a_removed_slo(tmp_path: Path) -> None:
    shutil.copytree(DEFINITIONS, tmp_path / DEFINITIONS_DIR)
    write(tmp_path)
    (tmp_path / DEFINITIONS_DIR / "auth.yaml").unlink()
    write(tmp_path)
    assert not (tmp_path / "deploy/k8s/monitoring/rules/auth-slo.yaml").exists()
    assert not (tmp_path / "docs/runbooks/AuthAvailabilityFastBurn.md").exists()
    assert (tmp_path / "docs/runbooks/OrdersAvailabilityFastBurn.md").exists()
