"""The dashboards are generated deterministically and the committed files are the current ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_observability import render
from fleet_observability.__main__ import main

COMMITTED = render.repo_root() / render.OUTPUT_DIR


def test_two_generations_write_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["dashboards", "--out", str(first)]) == 0
    assert main(["dashboards", "--out", str(second)]) == 0

    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    assert names, "no dashboard was written"
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_files_are_sorted_indented_json_ending_with_a_newline() -> None:
    for name, text in render.render_all().items():
        assert text.endswith("}\n"), name
        assert text.startswith('{\n  "annotations"'), name


def test_committed_dashboards_match_a_fresh_generation(tmp_path: Path) -> None:
    assert main(["dashboards", "--out", str(tmp_path)]) == 0
    fresh = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in COMMITTED.glob("*.json")}

    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, (
        f"{render.OUTPUT_DIR} is out of date ({', '.join(stale)}): "
        f"run `make dashboards` (or `{render.REGENERATE}`) and commit the result"
    )


def test_check_mode_fails_on_a_stale_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "--out", str(tmp_path)]) == 0
    assert main(["dashboards", "--out", str(tmp_path), "--check"]) == 0
    edited = tmp_path / "fleet-overview.json"
    edited.write_text(edited.read_text().replace("Fleet / overview", "hand edited"))
    (tmp_path / "renamed-long-ago.json").write_text("{}\n")

    assert main(["dashboards", "--out", str(tmp_path), "--check"]) == 1

    errors = capsys.readouterr().err
    assert "fleet-overview.json: out of date" in errors
    assert "renamed-long-ago.json: not generated" in errors
    assert render.REGENERATE in errors
    assert "hand edited" in edited.read_text()


def test_generation_removes_dashboards_that_are_no_longer_generated(tmp_path: Path) -> None:
    (tmp_path / "renamed-long-ago.json").write_text("{}\n")

    assert main(["dashboards", "--out", str(tmp_path)]) == 0

    assert not (tmp_path / "renamed-long-ago.json").exists()
    assert render.differences(tmp_path) == []
