import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contract_schemas.files import default_schemas_dir


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The committed schemas of this checkout."""
    return default_schemas_dir()


@pytest.fixture(scope="session")
def committed(schemas_dir: Path) -> dict[str, dict[str, Any]]:
    """Every committed schema document, by name (`order.placed.v1`, `cloudevent`)."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schemas_dir.glob("*.json"))
    }


@pytest.fixture
def schemas_copy(schemas_dir: Path, tmp_path: Path) -> Path:
    """A scratch copy of the committed schemas the test may change."""
    return Path(shutil.copytree(schemas_dir, tmp_path / "schemas"))
