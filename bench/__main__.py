"""`make bench`: the fleet measured as its users meet it, against ceilings measured in the same run.

    .venv/bin/python -m bench [--quick] [--rates 50,100,...] [--step-seconds N]

Everything runs on loopback, on this machine's cores, load generator included; each part is
bounded in time (three to ten minutes in all, by how far the rates climb; one with `--quick`).
Prints a table and writes `bench/results/bench-<UTC time>.{json,md,png}` (the chart: latency
against offered load).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import signal
import time
from pathlib import Path
from typing import Any

from bench import baselines, pipeline, reads, relay, report
from bench.common import rss_mb
from bench.fleet import running_fleet
from fleetctl.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RATES = (25, 50, 75, 100, 150, 200, 300)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short steps (a smoke run)")
    parser.add_argument("--rates", help="offered orders/s, comma-separated, rising")
    parser.add_argument("--step-seconds", type=float, help="length of each open-loop step")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    parser.add_argument(
        "--skip",
        default="",
        help="parts to leave out, comma-separated: reads, relay (e.g. to measure older code)",
    )
    return parser.parse_args()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    seconds = 2.0 if quick else 6.0
    step = args.step_seconds or (4.0 if quick else 15.0)
    rates = [float(r) for r in args.rates.split(",")] if args.rates else list(DEFAULT_RATES)
    if quick and not args.rates:
        rates = [20.0, 40.0]
    connections = (4, 32)
    stack = Stack.from_env()
    began = time.monotonic()
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "settings": {"step_seconds": step, "http_seconds": seconds, "rates": rates},
    }
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    print("baselines ...", flush=True)
    results["round_trip"] = baselines.round_trip()
    results["bare"] = [
        r.as_dict() for r in baselines.bare_endpoint(seconds=seconds, connections=connections)
    ]
    results["postgres_tps"] = await baselines.postgres_commit_rate(
        stack.maintenance_dsn, "postgres", seconds=seconds + 2
    )
    results["rabbitmq_publish_per_second"] = await baselines.rabbitmq_publish_rate(
        stack.amqp_url, seconds=seconds
    )
    print("starting a fleet of its own ...", flush=True)
    async with running_fleet() as fleet:
        await asyncio.sleep(2)  # let start-up work (first retention pass, JWKS fetches) settle
        results["rss_idle_mb"] = {name: rss_mb(pid) for name, pid in fleet.pids().items()}
        results["reads"] = []
        if "reads" not in skip:
            print("reads ...", flush=True)
            loads = await asyncio.to_thread(
                reads.cached_product_reads, fleet, seconds=seconds, connections=connections
            )
            results["reads"] = [r.as_dict() for r in loads]
        print("order pipeline, open loop ...", flush=True)
        steps = []
        for n, rate in enumerate(rates):
            result = await pipeline.run_step(fleet, rate=rate, seconds=step, seed=n + 1)
            steps.append(result)
            print(report.step_line(result), flush=True)
            # Far past capacity (most refused, or most decided late): no use climbing further.
            if result.accepted_per_second < 0.5 * rate or result.decided_within_slo_share < 0.5:
                break
        results["steps"] = [s.as_dict() for s in steps]
        held = [s.offered_per_second for s in steps if s.held]
        results["held_per_second"] = max(held, default=0.0)
        overload_rate = 2 * (results["held_per_second"] or rates[0])
        await pipeline.settle(fleet)  # the last step's backlog must not weigh on the next
        print(f"overload: {overload_rate:g} orders/s offered ...", flush=True)
        overload = await pipeline.run_step(fleet, rate=overload_rate, seconds=step, seed=99)
        print(report.step_line(overload), flush=True)
        results["overload"] = overload.as_dict()
        results["rss_load_mb"] = {
            name: max(s.rss_mb.get(name, 0.0) for s in [*steps, overload]) for name in fleet.pids()
        }
        results["relay_drain_per_second"] = None
        if "relay" not in skip:
            print("outbox relay draining a backlog ...", flush=True)
            results["relay_drain_per_second"] = await relay.drain_rate(
                fleet.stack.admin_dsn, stack.amqp_url, events=2_000 if quick else 20_000
            )
    results["elapsed_seconds"] = round(time.monotonic() - began, 1)
    return results


def _cpus() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: fleet stopped, database dropped


def main() -> None:
    args = _arguments()
    signal.signal(signal.SIGTERM, _interrupt)
    results = asyncio.run(_run(args))
    results["targets"] = report.targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    markdown = report.markdown(results)
    stem.with_suffix(".md").write_text(markdown)
    report.chart(results, stem.with_suffix(".png"))
    print()
    print(markdown)
    print(f"written: {stem}.json, .md, .png")


if __name__ == "__main__":
    main()
