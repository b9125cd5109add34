"""The check of one migration file, and of every migration under some paths."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from migration_lint.findings import MARK_HOW, Finding
from migration_lint.marker import module_constants, read_marker
from migration_lint.operations import UpgradeScanner


class NoMigrationsError(ValueError):
    """A path names no migration file: a typo would otherwise pass the check silently."""


def _does_nothing(function: ast.FunctionDef) -> bool:
    """Only `pass`, `...`, a docstring or a `raise`: no schema change at all."""
    return all(
        isinstance(statement, ast.Pass | ast.Raise)
        or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        for statement in function.body
    )


def check_source(source: str, path: Path) -> list[Finding]:
    """Findings of one migration; `path` is only used to name the file in them."""

    def at(node: ast.AST | None, message: str) -> Finding:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) + 1
        return Finding(path, line, column, message)

    try:
        module = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 1, exc.offset or 1, f"not valid Python: {exc.msg}")]
    constants = module_constants(module)
    if "revision" not in constants:
        return [at(None, "not an Alembic migration: no module-level `revision`")]

    functions = {s.name: s for s in module.body if isinstance(s, ast.FunctionDef)}
    upgrade, downgrade = functions.get("upgrade"), functions.get("downgrade")
    findings: list[Finding] = []
    marker = read_marker(module)
    findings += [at(node, message) for node, message in marker.problems]
    if upgrade is None:
        findings.append(at(None, "no upgrade() function"))
    elif not marker.exempts:
        # Only upgrade() is checked: a downgrade drops what its upgrade added, by design.
        strings = {
            name: value.value
            for name, (_, value) in constants.items()
            if isinstance(value, ast.Constant) and isinstance(value.value, str)
        }
        operations = UpgradeScanner(functions, strings).scan(upgrade)
        findings += [at(op.node, f"{op.message}; {MARK_HOW}") for op in operations]
    if downgrade is None:
        findings.append(at(None, "no downgrade() function: every migration must be reversible"))
    elif _does_nothing(downgrade) and upgrade is not None and not _does_nothing(upgrade):
        findings.append(
            at(
                downgrade,
                "downgrade() does nothing but upgrade() changes the schema: write its reverse "
                "so a release can be rolled back",
            )
        )
    return sorted(findings)


def check_file(path: Path) -> list[Finding]:
    return check_source(path.read_text(encoding="utf-8"), path)


def migration_files(paths: Iterable[Path]) -> list[Path]:
    """The migration files named by `paths` (files, or `versions` directories: their `*.py`,
    not recursively, like Alembic). Raises `NoMigrationsError` for a path that names none."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        elif path.is_file():
            found = [path]
        else:
            found = []
        if not found:
            msg = f"no migrations in {path}"
            raise NoMigrationsError(msg)
        files += found
    return files


def check_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Finding]]:
    """Every migration under `paths` and the findings of all of them."""
    files = migration_files(paths)
    return files, [finding for path in files for finding in check_file(path)]
