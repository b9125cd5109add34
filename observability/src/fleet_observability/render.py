"""Dashboards to files: deterministic JSON (sorted keys, two-space indent, trailing newline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from fleet_observability import promql
from fleet_observability.dashboards import all_boards
from fleet_observability.panels import build

OUTPUT_DIR = Path("deploy/k8s/monitoring/dashboards")
REGENERATE = "python -m fleet_observability dashboards"


def render_all() -> dict[str, str]:
    """`<uid>.json` -> file text, for every dashboard; refuses a query that is not PromQL."""
    files: dict[str, str] = {}
    for board in all_boards():
        text = json.dumps(build(board), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        document = json.loads(text)
        for panel in panels(document):
            for target in panel.get("targets", []):
                try:
                    promql.parse(target["expr"])
                except ValueError as error:
                    raise ValueError(
                        f"{board.uid} / {panel['title']}: invalid PromQL {target['expr']!r}: "
                        f"{error}"
                    ) from error
        name = f"{board.uid}.json"
        if name in files:
            raise ValueError(f"two dashboards share the uid {board.uid!r}")
        files[name] = text
    return files


def write(out_dir: Path) -> list[Path]:
    """Write every dashboard and delete stale `*.json` files left by renamed ones."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = render_all()
    for stale in sorted(out_dir.glob("*.json")):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(out_dir: Path) -> list[str]:
    """Files in `out_dir` that are missing, stale or left over compared with a fresh render."""
    files = render_all()
    problems = [
        f"{name}: {'missing' if not (out_dir / name).exists() else 'out of date'}"
        for name, text in files.items()
        if not (out_dir / name).exists() or (out_dir / name).read_bytes() != text.encode()
    ]
    problems += [
        f"{path.name}: not generated (left over)"
        for path in sorted(out_dir.glob("*.json"))
        if path.name not in files
    ]
    return problems


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every non-row panel of a dashboard document, rows' nested panels included."""
    for panel in document.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def repo_root(start: Path | None = None) -> Path:
    """The Fleet checkout holding this package (or the working directory's)."""
    candidates = [Path(__file__).resolve(), (start or Path.cwd()).resolve()]
    for candidate in candidates:
        for directory in (candidate, *candidate.parents):
            if (directory / "observability" / "pyproject.toml").is_file():
                return directory
    raise FileNotFoundError("not inside the Fleet repository; pass --out")
