"""The repository's own documentation stays true to the tree.

`docs/architecture.md`: every repository path it names in backticks exists, every dotted name
(`chassis.loops.BackgroundLoop`) imports, and its service layout is each service's: a file of the
common layout is in every service unless that service's row says it has none (and then it has
none), and every module of a service is named in the layout section. Each package README names
every module of its package. Each checker is also shown to catch a broken input.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
# A placeholder in a path stands for each of these.
PLACEHOLDERS = {"<name>": SERVICES, "<service>": SERVICES}
# The importable top-level packages whose dotted names the documentation may use.
PACKAGES = (
    "chassis", "contracts", "fleetctl", "migration_lint", "contract_schemas", "fleet_slo",
    "fleet_observability", *SERVICES,
)  # fmt: skip
# Each package README and the package directory it describes.
PACKAGE_READMES = {
    "chassis/README.md": "chassis/src/chassis",
    "contracts/README.md": "contracts/src/contracts",
    "tools/fleetctl/README.md": "tools/fleetctl/src/fleetctl",
    "tools/migration_lint/README.md": "tools/migration_lint/src/migration_lint",
    "tools/contract_schemas/README.md": "tools/contract_schemas/src/contract_schemas",
    "slo/README.md": "slo/src/fleet_slo",
    "observability/README.md": "observability/src/fleet_observability",
}
LAYOUT_HEADING = "## Service layout"
DIFFERS_LEAD = "Where a service differs"

FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
DOTTED = re.compile(rf"^(?:{'|'.join(PACKAGES)})(?:\.\w+)+$")
FILE_NAME = re.compile(r"^[\w.]+\.(?:py|ini)$|^\w+/$")
# "no `a`, `b` and `c`": the files a service says it does not have.
ABSENT_LIST = re.compile(r"\bno ((?:`[^`]+`(?:, | and )?)+)")


def prose(markdown: str) -> str:
    """The markdown without its fenced code blocks."""
    return FENCE.sub("", markdown)


def code_spans(markdown: str) -> list[str]:
    return [m[2].strip() for m in CODE_SPAN.finditer(prose(markdown))]


def top_level_entries() -> set[str]:
    return {path.name for path in ROOT.iterdir()}


def expanded(path: str) -> list[str]:
    candidates = [path]
    for placeholder, values in PLACEHOLDERS.items():
        if placeholder in path:
            candidates = [c.replace(placeholder, v) for c in candidates for v in values]
    return candidates


# --- paths and dotted names ---------------------------------------------------------------------


def path_problems(markdown: str) -> list[str]:
    """Code spans that name a repository path (their first segment is a top-level entry of the
    repository) which does not exist."""
    roots = top_level_entries()
    problems = []
    for span in sorted(set(code_spans(markdown))):
        if " " in span or span.split("/")[0] not in roots:
            continue
        problems += [
            f"{candidate}: no such file or directory"
            for candidate in expanded(span)
            if not (ROOT / candidate).exists()
        ]
    return problems


def resolves(dotted: str) -> bool:
    """Whether `dotted` is a module, or an attribute path below the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def dotted_name_problems(markdown: str) -> list[str]:
    return [
        f"{span}: does not import"
        for span in sorted({s for s in code_spans(markdown) if DOTTED.match(s)})
        if not resolves(span)
    ]


# --- the service layout -------------------------------------------------------------------------


def section(markdown: str, heading: str) -> str:
    text = prose(markdown)
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading) :], re.M)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def table_rows(markdown: str) -> Iterator[list[str]]:
    """The cells of each body row of the markdown tables in `markdown`."""
    for line in markdown.splitlines():
        if not line.startswith("|") or re.match(r"^\|[-| :]+\|$", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        yield cells


def file_names(text: str) -> set[str]:
    return {s for s in (m[2].strip() for m in CODE_SPAN.finditer(text)) if FILE_NAME.match(s)}


def has_file(service_dir: Path, name: str) -> bool:
    """Whether the service has the file (or directory, `name/`) in its package, at any depth,
    or beside `src/` (`alembic/`, `alembic.ini`)."""
    bare = name.rstrip("/")
    package = service_dir / "src" / service_dir.name
    return (service_dir / bare).exists() or any(package.rglob(bare))


def layout_problems(markdown: str, services_dir: Path) -> list[str]:
    layout = section(markdown, LAYOUT_HEADING)
    common_part, _, differs_part = layout.partition(DIFFERS_LEAD)
    common = {name for row in table_rows(common_part) for name in file_names(row[0])}
    rows = {row[0]: row[1] for row in table_rows(differs_part) if row[0] in SERVICES}
    named = file_names(layout)
    problems = [f"{s}: no row saying how it differs" for s in SERVICES if s not in rows]
    for service, cell in sorted(rows.items()):
        service_dir = services_dir / service
        absent = {n for m in ABSENT_LIST.finditer(cell) for n in file_names(m[1])}
        present = (file_names(cell) - absent) | (common - absent)
        problems += [
            f"{service}: has {n}, said not to" for n in sorted(absent) if has_file(service_dir, n)
        ]
        problems += [
            f"{service}: has no {n}" for n in sorted(present) if not has_file(service_dir, n)
        ]
        package = service_dir / "src" / service
        for module in sorted(package.iterdir()):
            name = f"{module.name}/" if module.is_dir() else module.name
            if module.name in {"__init__.py", "py.typed", "__pycache__"}:
                continue
            if name not in named:
                problems += [f"{service}: {name} is not named in the service layout"]
    return problems


# --- package READMEs ----------------------------------------------------------------------------


def modules_of(package_dir: Path) -> list[str]:
    """Every module and subpackage of a package, as dotted names relative to it."""
    names = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if "__pycache__" in relative.parts or "tests" in relative.parts:
            continue
        if path.is_dir():
            names.append(".".join(relative.parts))
        elif path.suffix == ".py" and path.stem not in {"__init__", "__main__"}:
            names.append(".".join((*relative.parts[:-1], path.stem)))
    return names


def named_modules(markdown: str, package: str) -> set[str]:
    """The module names a README's code spans mention, relative to `package`, in any spelling:
    `messaging.handlers`, `chassis.messaging.handlers`, `messaging/handlers.py`, `messaging/`."""
    names = set()
    for span in code_spans(markdown):
        for word in re.findall(r"[\w./]+", span):
            name = word.split(f"src/{package}/")[-1].removeprefix(f"{package}.")
            name = name.removeprefix(f"{package}/").removesuffix("/").removesuffix(".py")
            names.add(name.replace("/", "."))
    return names


def readme_problems(readme: Path, package_dir: Path) -> list[str]:
    named = named_modules(readme.read_text(encoding="utf-8"), package_dir.name)
    return [f"{module}: not named" for module in modules_of(package_dir) if module not in named]


# --- tests --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def architecture() -> str:
    return ARCHITECTURE.read_text(encoding="utf-8")


def test_the_readme_links_the_architecture_document() -> None:
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_path_the_architecture_document_names_exists(architecture: str) -> None:
    assert any(s.startswith("chassis/src/chassis/loops.py") for s in code_spans(architecture))
    assert path_problems(architecture) == []


def test_every_dotted_name_the_architecture_document_uses_imports(architecture: str) -> None:
    assert any(DOTTED.match(s) for s in code_spans(architecture))
    assert dotted_name_problems(architecture) == []


def test_every_service_has_the_layout_the_architecture_document_describes(
    architecture: str,
) -> None:
    assert layout_problems(architecture, ROOT / "services") == []


@pytest.mark.parametrize("readme", sorted(PACKAGE_READMES))
def test_each_package_readme_names_every_module_of_its_package(readme: str) -> None:
    assert readme_problems(ROOT / readme, ROOT / PACKAGE_READMES[readme]) == []


def test_a_missing_path_or_an_unknown_name_is_reported() -> None:
    markdown = (
        "See `chassis/src/chassis/loops.py`, `chassis/src/chassis/gone.py`,\n"
        "`services/<name>/src/<name>/main.py`, `services/<name>/src/<name>/handlers.py`,\n"
        "`chassis.loops.BackgroundLoop`, `chassis.loops.Gone`, `orders.nowhere` and\n"
        "`application/problem+json`.\n\n```sh\ncat `docs/missing.md`\n```\n"
    )
    assert path_problems(markdown) == [
        "chassis/src/chassis/gone.py: no such file or directory",
        "services/gateway/src/gateway/handlers.py: no such file or directory",
        "services/auth/src/auth/handlers.py: no such file or directory",
    ]
    assert dotted_name_problems(markdown) == [
        "chassis.loops.Gone: does not import",
        "orders.nowhere: does not import",
    ]


def _service(root: Path, name: str, files: Iterable[str]) -> None:
    package = root / name / "src" / name
    package.mkdir(parents=True)
    for file in files:
        (package / file).write_text("", encoding="utf-8")


def test_a_layout_the_services_do_not_follow_is_reported(tmp_path: Path) -> None:
    for service in SERVICES:
        files = ["__init__.py", "main.py", "router.py"]
        if service == "orders":
            files += ["saga.py", "extra.py"]
        if service == "worker":
            files.remove("router.py")
        if service == "gateway":
            files.remove("router.py")
            files.append("repository.py")
        _service(tmp_path, service, files)
    markdown = (
        "## Service layout\n\n| file | holds |\n|---|---|\n| `main.py` | root |\n"
        "| `router.py` | routes |\n| `repository.py` | queries |\n\n"
        "Where a service differs, and why:\n\n| service | differs | why |\n|---|---|---|\n"
        "| gateway | no `router.py` and `repository.py` | proxy |\n"
        "| auth | no `repository.py` | |\n"
        "| catalog | no `repository.py` | |\n| orders | no `repository.py`; `saga.py` | |\n\n"
        "## Next\n\n`extra.py`\n"
    )
    assert layout_problems(markdown, tmp_path) == [
        "worker: no row saying how it differs",
        "gateway: has repository.py, said not to",
        "orders: extra.py is not named in the service layout",
    ]


def test_a_module_a_readme_does_not_name_is_reported(tmp_path: Path) -> None:
    package = tmp_path / "src" / "pkg"
    (package / "sub").mkdir(parents=True)
    for name in (
        "__init__.py",
        "__main__.py",
        "one.py",
        "two.py",
        "sub/__init__.py",
        "sub/deep.py",
    ):
        (package / name).write_text("", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text("`pkg.one` and `sub/` hold it (`two`\n)", encoding="utf-8")
    assert readme_problems(readme, package) == ["sub.deep: not named"]
