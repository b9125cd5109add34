"""The order pipeline under open-loop load: what customers get (POST latency, accepted or
refused) and how long an accepted order takes to be decided (place→confirmed, read from the
orders table: `updated_at - created_at`, both stamped by Postgres)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from bench.common import (
    cpu_seconds,
    infrastructure_pids,
    machine_cpu_seconds,
    percentile,
    rss_mb,
)
from bench.fleet import BenchFleet

# The SLOs of `slo/definitions` (gateway POST /v1/orders latency, orders decided in time).
SLO_POST_SECONDS, SLO_POST_SHARE = 0.3, 0.95
SLO_DECIDED_SECONDS, SLO_DECIDED_SHARE = 2.0, 0.99
# A step "holds" its rate when the fleet accepts (nearly) all of it within those SLOs and the
# generator kept its schedule.
HELD_ACCEPTED_SHARE = 0.99
SCHEDULE_LAG_P99_MS = 10.0
DECIDE_TIMEOUT_SECONDS = 40.0


@dataclass
class Step:
    offered_per_second: float
    seconds: float
    offered: int
    accepted: int
    refused: dict[str, int]
    failed: dict[str, int]
    refused_with_retry_after: int
    post_p50_ms: float
    post_p95_ms: float
    post_p99_ms: float
    refused_p99_ms: float
    schedule_lag_p99_ms: float
    decided: int
    confirmed: int
    undecided: int
    confirm_p50_ms: float
    confirm_p99_ms: float
    decided_within_slo_share: float
    post_within_slo_share: float
    cpu_ms_per_order: float
    machine_busy_share: float
    cpu_ms_per_order_by_process: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds

    @property
    def held(self) -> bool:
        return (
            self.offered > 0
            and self.accepted >= HELD_ACCEPTED_SHARE * self.offered
            and self.undecided == 0
            and self.post_within_slo_share >= SLO_POST_SHARE
            and self.decided_within_slo_share >= SLO_DECIDED_SHARE
            and self.schedule_lag_p99_ms <= SCHEDULE_LAG_P99_MS
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accepted_per_second": self.accepted_per_second, "held": self.held}


async def _generate(plan: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate(json.dumps(plan).encode())
    if process.returncode != 0:
        msg = f"the load generator failed ({process.returncode})"
        raise RuntimeError(msg)
    generated: dict[str, Any] = json.loads(out)
    return generated


async def _decisions(dsn: str, order_ids: list[str], *, timeout: float) -> list[tuple[str, float]]:
    """(status, seconds from placed to decided) of each order, once all are decided or the
    timeout passed (then the pending ones are returned as pending)."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            rows = await conn.fetch(
                "SELECT status, extract(epoch FROM updated_at - created_at)::float8 AS took "
                "FROM orders.orders WHERE id = ANY($1::uuid[])",
                order_ids,
            )
            pending = sum(1 for r in rows if r["status"] == "pending")
            if pending == 0 or time.monotonic() > deadline:
                return [(r["status"], r["took"]) for r in rows]
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def settle(fleet: BenchFleet, *, timeout: float = 120.0) -> None:
    """Wait until no order is pending any more (a step past capacity leaves a backlog)."""
    conn = await asyncpg.connect(fleet.stack.admin_dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not await conn.fetchval(
                "SELECT count(*) FROM orders.orders WHERE status = 'pending'"
            ):
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def run_step(fleet: BenchFleet, *, rate: float, seconds: float, seed: int) -> Step:
    plan = {
        "gateway": fleet.gateway,
        "tokens": fleet.customers,
        "products": fleet.products,
        "rate": rate,
        "seconds": seconds,
        "seed": seed,
    }
    pids = fleet.pids()
    peak: dict[str, float] = dict.fromkeys(pids, 0.0)
    groups = {name: [pid] for name, pid in pids.items()} | infrastructure_pids()
    cpu_before = {name: {p: cpu_seconds(p) for p in group} for name, group in groups.items()}
    busy_before, total_before = machine_cpu_seconds()
    generating = asyncio.create_task(_generate(plan))
    while not generating.done():
        for name, pid in pids.items():
            peak[name] = max(peak[name], rss_mb(pid))
        await asyncio.wait({generating}, timeout=0.5)
    generated = generating.result()
    results: list[list[Any]] = generated["results"]
    accepted_ids = [r[4] for r in results if r[3] == 202]
    decisions = await _decisions(
        fleet.stack.admin_dsn, accepted_ids, timeout=DECIDE_TIMEOUT_SECONDS
    )
    busy_after, total_after = machine_cpu_seconds()
    per_order = 1000 / max(1, len(accepted_ids))
    for name, group in infrastructure_pids().items():  # processes started meanwhile count whole
        for pid in group:
            cpu_before[name].setdefault(pid, 0.0)
    cpu_ms = {
        name: round(sum(cpu_seconds(p) - before for p, before in group.items()) * per_order, 2)
        for name, group in cpu_before.items()
    }
    cpu_ms["load generator"] = round(generated["cpu_seconds"] * per_order, 2)

    statuses = Counter(r[3] for r in results)
    accepted_ms = [r[2] for r in results if r[3] == 202]
    refused = {str(s): n for s, n in statuses.items() if s in (429, 503)}
    failed = {str(s): n for s, n in statuses.items() if s not in (202, 429, 503)}
    decided = [(s, took) for s, took in decisions if s != "pending"]
    confirmed_ms = [took * 1000 for s, took in decided if s == "confirmed"]
    within = sum(1 for _, took in decided if took <= SLO_DECIDED_SECONDS)
    return Step(
        offered_per_second=rate,
        seconds=seconds,
        offered=len(results),
        accepted=len(accepted_ids),
        refused=refused,
        failed=failed,
        refused_with_retry_after=sum(1 for r in results if r[3] in (429, 503) and r[5]),
        post_p50_ms=percentile(accepted_ms, 0.50),
        post_p95_ms=percentile(accepted_ms, 0.95),
        post_p99_ms=percentile(accepted_ms, 0.99),
        refused_p99_ms=percentile([r[2] for r in results if r[3] in (429, 503)], 0.99),
        schedule_lag_p99_ms=percentile([r[1] for r in results], 0.99),
        decided=len(decided),
        confirmed=len(confirmed_ms),
        undecided=len(decisions) - len(decided),
        confirm_p50_ms=percentile(confirmed_ms, 0.50),
        confirm_p99_ms=percentile(confirmed_ms, 0.99),
        decided_within_slo_share=within / len(accepted_ids) if accepted_ids else math.nan,
        post_within_slo_share=(
            sum(1 for ms in accepted_ms if ms <= SLO_POST_SECONDS * 1000) / len(accepted_ms)
            if accepted_ms
            else math.nan
        ),
        cpu_ms_per_order=sum(cpu_ms[name] for name in pids),
        cpu_ms_per_order_by_process=cpu_ms,
        machine_busy_share=(busy_after - busy_before) / max(1e-9, total_after - total_before),
        rss_mb=peak,
    )
