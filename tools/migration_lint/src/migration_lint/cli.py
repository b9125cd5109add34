"""`python -m migration_lint PATH...`: exit 1 listing the problems, 0 when none."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from migration_lint.check import NoMigrationsError, check_paths
from migration_lint.findings import ADVICE


def run(paths: Sequence[Path], out: TextIO | None = None) -> int:
    """Check `paths`, report on `out` (standard output by default); the process exit code."""
    out = out or sys.stdout
    try:
        files, findings = check_paths(paths)
    except NoMigrationsError as exc:
        print(f"migration check: {exc}", file=out)
        return 2
    for finding in findings:
        print(finding, file=out)
    if any("contract step" in finding.message for finding in findings):
        print(ADVICE, file=out)
    verdict = f"{len(findings)} problem(s)" if findings else "no problems"
    print(f"migration check: {len(files)} migration(s), {verdict}", file=out)
    return 1 if findings else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migration_lint",
        description="Fail on destructive operations in migrations not marked as contract steps, "
        "and on migrations that cannot be rolled back.",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, help="migration files or alembic/versions directories"
    )
    return run(parser.parse_args(argv).paths)
