"""`python -m fleet_slo generate|check [--root DIR]` (run from the repository root)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleet_slo.definitions import SLOFileError
from fleet_slo.generate import REGENERATE, differences, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet_slo")
    parser.add_argument("command", choices=["generate", "check"])
    parser.add_argument("--root", type=Path, default=Path(), help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        if args.command == "generate":
            written = write(root)
            print(f"wrote {len(written)} files (PrometheusRules and runbooks)")
            return 0
        problems = differences(root)
    except SLOFileError as exc:
        print(f"invalid SLO definition: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"generated SLO files are stale; run: {REGENERATE}", file=sys.stderr)
        return 1
    print("SLO rules and runbooks are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
