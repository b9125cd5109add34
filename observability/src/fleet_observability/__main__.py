"""`python -m fleet_observability dashboards [--out DIR] [--check]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fleet_observability import render


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet_observability")
    commands = parser.add_subparsers(dest="command", required=True)
    dashboards = commands.add_parser(
        "dashboards", help=f"write the Grafana dashboards to {render.OUTPUT_DIR}/<uid>.json"
    )
    dashboards.add_argument(
        "--out", type=Path, help=f"output directory (default: <repo>/{render.OUTPUT_DIR})"
    )
    dashboards.add_argument(
        "--check", action="store_true", help="write nothing; fail if the files are not current"
    )
    args = parser.parse_args(argv)

    out_dir: Path = args.out or render.repo_root() / render.OUTPUT_DIR
    if args.check:
        problems = render.differences(out_dir)
        for problem in problems:
            print(f"{out_dir / problem}", file=sys.stderr)
        if problems:
            print(f"regenerate with: {render.REGENERATE}", file=sys.stderr)
            return 1
        return 0
    for path in render.write(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
