"""Where the committed schemas live, and reading and writing them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import contracts
from contract_schemas.documents import Schema, file_name, render


class SchemasDirNotFoundError(LookupError):
    """No schemas directory: the package is not imported from a source checkout."""


def default_schemas_dir(package_dir: Path | None = None) -> Path:
    """`schemas/` next to `src/` in the source checkout the package is imported from.

    Independent of the working directory; an installed wheel has no such directory, so the
    caller must name one (`--schemas-dir`).
    """
    package_dir = package_dir or Path(contracts.__file__).resolve().parent
    root = package_dir.parent.parent
    if package_dir.parent.name != "src" or not (root / "pyproject.toml").is_file():
        msg = f"{package_dir} is not in a source checkout (<root>/src/contracts): name the dir"
        raise SchemasDirNotFoundError(msg)
    return root / "schemas"


def read_committed(directory: Path) -> dict[str, str]:
    """The text of every `<name>.json` in the directory, by document name."""
    if not directory.is_dir():
        msg = f"no schemas directory at {directory}"
        raise SchemasDirNotFoundError(msg)
    return {
        path.name.removesuffix(".json"): path.read_text(encoding="utf-8")
        for path in sorted(directory.glob("*.json"))
    }


def write_documents(
    directory: Path, documents: Mapping[str, Schema], committed: Mapping[str, str]
) -> list[str]:
    """Make the directory hold exactly `documents`; the names of the files written or removed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for name, document in sorted(documents.items()):
        text = render(document)
        if committed.get(name) != text:
            (directory / file_name(name)).write_text(text, encoding="utf-8", newline="\n")
            changed.append(file_name(name))
    for name in sorted(committed.keys() - documents.keys()):
        (directory / file_name(name)).unlink()
        changed.append(file_name(name))
    return changed
