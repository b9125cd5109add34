"""The committed JSON Schemas: current, deterministic, and guarded by `python -m contract_schemas`.

`test_the_committed_schemas_match_the_code` is the contract guard of `make test`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract_schemas.catalogue import compare_catalogue
from contract_schemas.cli import main
from contract_schemas.documents import ENVELOPE, current_documents, render
from contract_schemas.files import SchemasDirNotFoundError, default_schemas_dir, read_committed
from contracts.commands import COMMAND_TYPES
from contracts.events import EVENT_TYPES

EVENT_TYPE = re.compile(r"^[a-z]+(?:_[a-z]+)*(?:\.[a-z]+(?:_[a-z]+)*)+\.v[1-9][0-9]*$")


def test_the_committed_schemas_match_the_code(schemas_dir: Path) -> None:
    report = compare_catalogue(read_committed(schemas_dir), current_documents())

    assert report.breaking == [], "\n".join(str(v) for v in report.breaking)
    assert report.outdated == [], "run `python -m contract_schemas export`: " + ", ".join(
        report.outdated
    )


def test_python_m_contract_schemas_check_passes_on_the_checkout_from_any_directory(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "contract_schemas", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "no breaking changes" in result.stdout


def test_every_event_and_command_type_and_the_envelope_have_a_committed_schema(
    schemas_dir: Path,
) -> None:
    names = {path.name for path in schemas_dir.glob("*.json")}

    assert names == {f"{name}.json" for name in [*EVENT_TYPES, *COMMAND_TYPES, ENVELOPE]}


def test_event_and_command_types_are_versioned_and_named_like_their_payload() -> None:
    for name, payload in {**EVENT_TYPES, **COMMAND_TYPES}.items():
        assert EVENT_TYPE.match(name), name
        assert payload.event_type == name
        assert payload.__name__.endswith(f"V{name.rsplit('.v', 1)[1]}"), payload.__name__


def test_the_schemas_dir_is_found_next_to_src_whatever_the_working_directory() -> None:
    assert default_schemas_dir() == Path(__file__).resolve().parents[3] / "contracts" / "schemas"


def test_outside_a_source_checkout_the_schemas_dir_must_be_named(tmp_path: Path) -> None:
    installed = tmp_path / "site-packages" / "contracts"
    installed.mkdir(parents=True)

    with pytest.raises(SchemasDirNotFoundError, match="not in a source checkout"):
        default_schemas_dir(installed)


def test_export_is_deterministic_sorted_and_ends_with_a_newline(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"

    assert main(["export", "--schemas-dir", str(first)]) == 0
    assert main(["export", "--schemas-dir", str(second)]) == 0

    texts = {path.name: path.read_bytes() for path in sorted(first.iterdir())}
    assert texts == {path.name: path.read_bytes() for path in sorted(second.iterdir())}
    for name, text in texts.items():
        assert text.endswith(b"}\n"), name
        assert b"\r" not in text, name
        _assert_keys_sorted(json.loads(text))
    placed = json.loads(texts["order.placed.v1.json"])
    assert placed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(placed["required"]) == {"order_id", "user_id", "items", "total_cents", "currency"}


def _assert_keys_sorted(node: Any) -> None:
    if isinstance(node, dict):
        assert list(node) == sorted(node)
        for value in node.values():
            _assert_keys_sorted(value)
    elif isinstance(node, list):
        for value in node:
            _assert_keys_sorted(value)


def test_export_rewrites_only_what_changed(
    schemas_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = schemas_copy / "order.cancelled.v1.json"
    document = json.loads(stale.read_text())
    document["description"] = "An older wording."
    stale.write_text(render(document))

    assert main(["export", "--schemas-dir", str(schemas_copy)]) == 0

    out = capsys.readouterr().out
    count = len(EVENT_TYPES) + len(COMMAND_TYPES) + 1
    assert out == f"updated {stale}\n{count} schemas in {schemas_copy}; 1 changed\n"
    assert stale.read_text() == render(current_documents()["order.cancelled.v1"])


def test_check_fails_on_a_schema_file_out_of_date_with_a_compatible_change(
    schemas_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if the optional `items` had just been added to the model: compatible, but not exported.
    stale = schemas_copy / "order.cancelled.v1.json"
    document = json.loads(stale.read_text())
    del document["properties"]["items"]
    stale.write_text(render(document))
    (schemas_copy / "stock.released.v1.json").unlink()

    assert main(["check", "--schemas-dir", str(schemas_copy)]) == 1

    err = capsys.readouterr().err
    assert "Breaking" not in err
    assert "Schema files out of date in" in err
    assert "order.cancelled.v1.json: differs from the model" in err
    assert "stock.released.v1.json: new, not exported yet" in err
    assert "Run `python -m contract_schemas export`" in err
    assert main(["check", "--schemas-dir", str(schemas_copy), "--breaking-only"]) == 0


def test_check_fails_on_a_breaking_change_and_names_it(
    schemas_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if `order.placed.v1` lost `coupon`, and `order.shipped.v1` left the registry.
    published = schemas_copy / "order.placed.v1.json"
    document = json.loads(published.read_text())
    document["properties"]["coupon"] = {"type": "string"}
    published.write_text(render(document))
    (schemas_copy / "order.shipped.v1.json").write_text(render(document))

    assert main(["check", "--schemas-dir", str(schemas_copy)]) == 1

    err = capsys.readouterr().err
    assert "Breaking changes to published event schemas (2):" in err
    assert "  - order.placed.v1: coupon: property removed\n" in err
    assert "  - order.shipped.v1: (document): committed schema has no model in the registry" in err
    assert "add a new version instead (e.g. `OrderPlacedV2`" in err
    assert "out of date" not in err  # export would refuse: the breaking change is the news


def test_a_new_version_of_an_event_type_is_no_breaking_change(committed: dict[str, Any]) -> None:
    texts = {name: render(document) for name, document in committed.items()}
    current = {**current_documents(), "order.placed.v2": {"type": "object"}}

    report = compare_catalogue(texts, current)

    assert report.breaking == []
    assert report.outdated == ["order.placed.v2.json: new, not exported yet"]


def test_export_refuses_to_overwrite_a_breaking_change_unless_allowed(
    schemas_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropped = schemas_copy / "order.shipped.v1.json"
    dropped.write_text((schemas_copy / "order.placed.v1.json").read_text())

    assert main(["export", "--schemas-dir", str(schemas_copy)]) == 1
    assert "Nothing written" in capsys.readouterr().err
    assert dropped.exists()

    assert main(["export", "--schemas-dir", str(schemas_copy), "--allow-breaking"]) == 0
    assert not dropped.exists()
    assert main(["check", "--schemas-dir", str(schemas_copy)]) == 0


def test_check_without_a_schemas_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--schemas-dir", str(tmp_path / "missing")]) == 2
    assert "no schemas directory at" in capsys.readouterr().err


def test_an_unreadable_committed_schema_is_reported(schemas_copy: Path) -> None:
    (schemas_copy / "order.placed.v1.json").write_text("{ not json")

    report = compare_catalogue(read_committed(schemas_copy), current_documents())

    assert [v.problem.split(":")[0] for v in report.breaking] == ["committed schema is unreadable"]
