"""`make chaos`: the fleet under steady order load while every process and server fails in turn.

    python -m chaos [--rate ORDERS_PER_SECOND] [--orders N] [--out DIR]

The rate defaults to half of the 50 orders/s `make bench` measured as held on a 2-core machine;
at least `--orders` orders are sent (1,000 by default: the load goes on after the faults until
then). Prints orders, faults, lost, duplicated and each fault's recovery time; writes the same as
JSON under `chaos/results/`. Exit status 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import uvloop

from chaos.scenario import run

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=25.0, help="orders per second (25)")
    parser.add_argument("--orders", type=int, default=1000, help="orders to send at least (1000)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON report goes")
    args = parser.parse_args(argv)
    report = uvloop.run(run(orders_per_second=args.rate, min_orders=args.orders))
    print(report.text(), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = args.out / f"chaos-{stamp}.json"
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    print(f"chaos: report written to {path}")
    sys.exit(0 if report.checks.passed else 1)


if __name__ == "__main__":
    main()
