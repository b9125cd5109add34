"""`python -m contract_schemas export|check`: keep `contracts/schemas/` equal to the code.

Compatibly: a change that breaks a published schema's consumers is refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from contract_schemas.catalogue import Report, compare_catalogue
from contract_schemas.documents import current_documents
from contract_schemas.files import (
    SchemasDirNotFoundError,
    default_schemas_dir,
    read_committed,
    write_documents,
)

EXPORT_HINT = "Run `python -m contract_schemas export` and commit the schema files."
VERSION_HINT = (
    "A published event type must keep serving its consumers: leave its payload as it is and add "
    "a new version instead (e.g. `OrderPlacedV2`, type `order.placed.v2`), published alongside "
    "the old one until no consumer reads it."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        directory: Path = args.schemas_dir or default_schemas_dir()
        if args.command == "export":
            return _export(directory, allow_breaking=args.allow_breaking)
        return _check(directory, breaking_only=args.breaking_only)
    except SchemasDirNotFoundError as exc:
        print(f"contracts: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m contract_schemas", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the JSON Schema of every event")
    export.add_argument(
        "--allow-breaking",
        action="store_true",
        help="overwrite committed schemas even where the change breaks their consumers",
    )
    check = commands.add_parser(
        "check", help="fail if the code breaks a committed schema or the files are out of date"
    )
    check.add_argument(
        "--breaking-only",
        action="store_true",
        help="report breaking changes only (e.g. against the schemas of the target branch)",
    )
    for command in (export, check):
        command.add_argument(
            "--schemas-dir",
            type=Path,
            help="the committed schemas (default: schemas/ next to src/ in this checkout)",
        )
    return parser


def _export(directory: Path, *, allow_breaking: bool) -> int:
    try:
        committed = read_committed(directory)
    except SchemasDirNotFoundError:
        committed = {}
    current = current_documents()
    report = compare_catalogue(committed, current)
    if report.breaking and not allow_breaking:
        _print_breaking(report)
        print("Nothing written (--allow-breaking overrides this).", file=sys.stderr)
        return 1
    changed = write_documents(directory, current, committed)
    for name in changed:
        print(f"updated {directory / name}")
    print(f"{len(current)} schemas in {directory}; {len(changed)} changed")
    return 0


def _check(directory: Path, *, breaking_only: bool) -> int:
    report = compare_catalogue(read_committed(directory), current_documents())
    if report.breaking:
        _print_breaking(report)
    if report.outdated and not breaking_only:
        count = len(report.outdated)
        print(f"Schema files out of date in {directory} ({count}):", file=sys.stderr)
        for line in report.outdated:
            print(f"  - {line}", file=sys.stderr)
        print(EXPORT_HINT, file=sys.stderr)
    failed = bool(report.breaking) or (bool(report.outdated) and not breaking_only)
    if not failed:
        print(f"contracts: {directory} matches the code; no breaking changes")
    return 1 if failed else 0


def _print_breaking(report: Report) -> None:
    count = len(report.breaking)
    print(f"Breaking changes to published event schemas ({count}):", file=sys.stderr)
    for violation in report.breaking:
        print(f"  - {violation}", file=sys.stderr)
    print(VERSION_HINT, file=sys.stderr)
