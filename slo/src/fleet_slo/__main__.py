"""`python -m fleet_slo generate|check|rules-file [--root DIR] [--out FILE]` (run from the
repository root)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fleet_slo.definitions import SLOFileError
from fleet_slo.generate import REGENERATE, differences, write
from fleet_slo.rules_file import RulesFileError, write_rules_file
from fleet_slo.runbooks import RULES_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet_slo")
    parser.add_argument("command", choices=["generate", "check", "rules-file"])
    parser.add_argument("--root", type=Path, default=Path(), help="repository root")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("slo-rules.yml"),
        help="rules-file: where to write the committed PrometheusRules' groups as one rules file",
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.command == "rules-file":
        try:
            rules_file = write_rules_file(root / RULES_DIR, args.out)
        except RulesFileError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"wrote {rules_file}")
        return 0
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
