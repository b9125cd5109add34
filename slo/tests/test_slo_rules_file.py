"""The rules file a Prometheus without the operator loads holds every committed PrometheusRule's
groups, unchanged, and promtool accepts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from slo_test_support import REPO_ROOT, RULES, every_manifest, promtool

from fleet_slo.__main__ import main
from fleet_slo.rules_file import RulesFileError, rule_groups, write_rules_file


def test_the_rules_file_holds_every_group_of_every_committed_prometheus_rule(
    tmp_path: Path,
) -> None:
    written = write_rules_file(RULES, tmp_path / "rules.yml")
    document = yaml.safe_load(written.read_text(encoding="utf-8"))
    assert list(document) == ["groups"]
    expected = [group for manifest in every_manifest() for group in manifest["spec"]["groups"]]
    assert document["groups"] == expected
    names = [group["name"] for group in expected]
    assert "worker-slo-burn-rate-alerts" in names
    assert "worker-alerts" in names


def test_promtool_accepts_the_rules_file_with_every_rule(tmp_path: Path) -> None:
    written = write_rules_file(RULES, tmp_path / "rules.yml")
    result = subprocess.run(
        [promtool(), "check", "rules", str(written)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(
        len(group["rules"]) for manifest in every_manifest() for group in manifest["spec"]["groups"]
    )
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_the_command_writes_the_rules_file_from_the_committed_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "slo-rules.yml"
    assert main(["rules-file", "--root", str(REPO_ROOT), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["groups"] == rule_groups(RULES)


def test_a_group_name_used_twice_is_refused(tmp_path: Path) -> None:
    shutil.copy(RULES / "orders-slo.yaml", tmp_path / "orders-slo.yaml")
    shutil.copy(RULES / "orders-slo.yaml", tmp_path / "orders-copy.yaml")
    with pytest.raises(RulesFileError, match=r"named more than once .*'orders-slo-error-ratios'"):
        rule_groups(tmp_path)


def test_a_directory_without_prometheus_rules_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("kind: Kustomization\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match="no PrometheusRule"):
        rule_groups(tmp_path)
