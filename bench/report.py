"""The benchmark's report: a line per step while it runs, then targets, Markdown and a chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.pipeline import Step
from bench.reads import CACHE_HIT, DIRECT, FORWARDED

# Issue targets, as ratios and rates measured in one run (see the README's Performance section).
TARGET_RATE = 300.0
TARGET_RATE_CONFIRM_P99_MS = 500.0
TARGET_RATE_POST_P99_MS = 300.0
TARGET_HALF_RATE = 150.0
TARGET_HALF_RATE_CONFIRM_P99_MS = 250.0
TARGET_ALONE_CONFIRM_P50_MS = 20.0
TARGET_DIRECT_SHARE = 0.40
TARGET_GATEWAY_SHARE = 0.25
TARGET_GATEWAY_ADDED_P50_MS = 1.0
TARGET_IDLE_RSS_MB = 120.0


def _f(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def step_line(step: Step) -> str:
    refused = sum(step.refused.values())
    return (
        f"  {step.offered_per_second:6g}/s offered: {step.accepted_per_second:6.1f}/s accepted, "
        f"{refused} refused, {sum(step.failed.values())} failed; "
        f"POST p50 {_f(step.post_p50_ms, 1)} p99 {_f(step.post_p99_ms, 1)} ms; "
        f"confirmed p50 {_f(step.confirm_p50_ms, 1)} "
        f"p99 {_f(step.confirm_p99_ms, 1)} ms; lag p99 {_f(step.schedule_lag_p99_ms, 1)} ms; "
        f"{'held' if step.held else 'NOT held'}"
    )


def _load(
    results: dict[str, Any], group: str, label: str, connections: int
) -> dict[str, Any] | None:
    rows = results["bare"] if group == "bare" else results["reads"]
    return next((r for r in rows if r["label"] == label and r["connections"] == connections), None)


def _step_at(results: dict[str, Any], rate: float) -> dict[str, Any] | None:
    return next((s for s in results["steps"] if s["offered_per_second"] == rate), None)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the capacity issue with the figure measured and whether it is met."""
    bare4 = _load(results, "bare", "bare FastAPI", 4)
    direct4 = _load(results, "reads", DIRECT, 4)
    gateway4 = _load(results, "reads", FORWARDED, 4)
    at_rate = _step_at(results, TARGET_RATE)
    at_half = _step_at(results, TARGET_HALF_RATE)
    alone = results["steps"][0] if results["steps"] else None
    overload = results["overload"]
    rows = [
        (
            f"{TARGET_RATE:g} orders/s held (all confirmed, "
            f"POST p99 ≤ {TARGET_RATE_POST_P99_MS:g} ms, "
            f"confirmed p99 ≤ {TARGET_RATE_CONFIRM_P99_MS:g} ms)",
            f"highest rate held: {results['held_per_second']:g}/s",
            at_rate is not None
            and at_rate["undecided"] == 0
            and at_rate["accepted"] == at_rate["offered"]
            and at_rate["post_p99_ms"] <= TARGET_RATE_POST_P99_MS
            and at_rate["confirm_p99_ms"] <= TARGET_RATE_CONFIRM_P99_MS,
        ),
        (
            f"at {TARGET_HALF_RATE:g}/s confirmed p99 ≤ {TARGET_HALF_RATE_CONFIRM_P99_MS:g} ms",
            f"{_f(at_half['confirm_p99_ms'], 1)} ms" if at_half else "not reached",
            at_half is not None
            and at_half["undecided"] == 0
            and at_half["confirm_p99_ms"] <= TARGET_HALF_RATE_CONFIRM_P99_MS,
        ),
        (
            f"one order alone: confirmed p50 ≤ {TARGET_ALONE_CONFIRM_P50_MS:g} ms",
            f"{_f(alone['confirm_p50_ms'], 1)} ms at {alone['offered_per_second']:g}/s"
            if alone
            else "n/a",
            alone is not None and alone["confirm_p50_ms"] <= TARGET_ALONE_CONFIRM_P50_MS,
        ),
        *_read_targets(bare4, direct4, gateway4),
        (
            f"idle RSS ≤ {TARGET_IDLE_RSS_MB:g} MB per service",
            f"max {max(results['rss_idle_mb'].values()):.0f} MB",
            max(results["rss_idle_mb"].values()) <= TARGET_IDLE_RSS_MB,
        ),
        (
            "at twice the held rate, accepted orders meet the SLOs and the rest are refused with "
            "Retry-After",
            f"{overload['accepted_per_second']:.0f}/s accepted, "
            f"{sum(overload['refused'].values())} refused "
            f"({overload['refused_with_retry_after']} with Retry-After), "
            f"{sum(overload['failed'].values())} failed",
            sum(overload["failed"].values()) == 0
            and overload["undecided"] == 0
            and overload["refused_with_retry_after"] == sum(overload["refused"].values())
            and overload["post_within_slo_share"] >= 0.95
            and overload["decided_within_slo_share"] >= 0.99,
        ),
    ]
    return [{"target": t, "measured": m, "met": bool(ok)} for t, m, ok in rows]


def _read_targets(
    bare: dict[str, Any] | None, direct: dict[str, Any] | None, gateway: dict[str, Any] | None
) -> list[tuple[str, str, bool]]:
    direct_target = f"cached read, catalog direct ≥ {TARGET_DIRECT_SHARE:.0%} of bare (4 conn.)"
    gateway_target = f"cached read through the gateway ≥ {TARGET_GATEWAY_SHARE:.0%} of bare"
    added_target = f"gateway adds ≤ {TARGET_GATEWAY_ADDED_P50_MS:g} ms p50 (4 conn.)"
    if bare is None or direct is None or gateway is None:
        return [(t, "not measured", False) for t in (direct_target, gateway_target, added_target)]
    bare_rate = bare["requests_per_second"]
    added = gateway["p50_ms"] - direct["p50_ms"]
    return [
        (
            direct_target,
            f"{direct['requests_per_second'] / bare_rate:.0%}",
            direct["requests_per_second"] >= TARGET_DIRECT_SHARE * bare_rate,
        ),
        (
            gateway_target,
            f"{gateway['requests_per_second'] / bare_rate:.0%}",
            gateway["requests_per_second"] >= TARGET_GATEWAY_SHARE * bare_rate,
        ),
        (added_target, f"{added:+.2f} ms", added <= TARGET_GATEWAY_ADDED_P50_MS),
    ]


def markdown(results: dict[str, Any]) -> str:
    bare = {r["connections"]: r for r in results["bare"]}
    lines = [
        f"# Fleet benchmark, {results['started_at']}",
        "",
        f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}; "
        "load generator, Postgres, RabbitMQ, Redis and the five services on the same machine; "
        f"{results['elapsed_seconds']:g} s in all.",
        "",
        "## Baselines (same run)",
        "",
        "| baseline | figure |",
        "|---|---|",
    ]
    for c, row in sorted(bare.items()):
        lines.append(
            f"| bare FastAPI JSON endpoint, {c} connections | "
            f"{_f(row['requests_per_second'])} req/s, "
            f"p50 {_f(row['p50_ms'], 2)} ms, p99 {_f(row['p99_ms'], 2)} ms |"
        )
    lines += [
        f"| Postgres, order-shaped transaction (3 inserts + commit), 8 clients | "
        f"{_f(results['postgres_tps'])} tps |",
        f"| RabbitMQ, confirmed publishes to a quorum queue, 200 in flight, 1 KiB | "
        f"{_f(results['rabbitmq_publish_per_second'])} msg/s |",
        f"| one loopback TCP round trip between two processes | "
        f"{results['round_trip']['wall_us']:g} µs, {results['round_trip']['cpu_us']:g} µs of CPU "
        "on the asking side |",
        "",
        "## Cached product read (`GET /v1/products/{id}`)",
        "",
        "| path | connections | req/s | share of bare | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["reads"]:
        share = row["requests_per_second"] / bare[row["connections"]]["requests_per_second"]
        lines.append(
            f"| {row['label']} | {row['connections']} | {_f(row['requests_per_second'])} | "
            f"{share:.0%} | {_f(row['p50_ms'], 2)} | {_f(row['p99_ms'], 2)} | {row['errors']} |"
        )
    lines += [
        "",
        f"`{FORWARDED}` goes past the gateway's shared cache (`Cache-Control: no-cache, "
        f"no-store`); `{CACHE_HIT}` is answered from it.",
        *_cache_effect_lines(results["reads"]),
        "",
        "## Order pipeline, open loop (`POST /v1/orders` through the gateway)",
        "",
        "| offered/s | accepted/s | refused | failed | POST p50 ms | POST p99 ms | "
        "confirmed p50 ms | confirmed p99 ms | decided ≤ 2 s | generator lag p99 ms | "
        "services CPU ms/order | machine busy | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in [*results["steps"], {**results["overload"], "overload": True}]:
        label = f"{step['offered_per_second']:g}" + (" (overload)" if step.get("overload") else "")
        lines.append(
            f"| {label} | {step['accepted_per_second']:.1f} | {sum(step['refused'].values())} | "
            f"{sum(step['failed'].values())} | {_f(step['post_p50_ms'], 1)} | "
            f"{_f(step['post_p99_ms'], 1)} | {_f(step['confirm_p50_ms'], 1)} | "
            f"{_f(step['confirm_p99_ms'], 1)} | {step['decided_within_slo_share']:.1%} | "
            f"{_f(step['schedule_lag_p99_ms'], 1)} | {_f(step['cpu_ms_per_order'], 1)} | "
            f"{step['machine_busy_share']:.0%} | {'yes' if step['held'] else 'no'} |"
        )
    lines += [
        "",
        f"Highest rate held within the SLOs (95 % of POSTs ≤ 300 ms, 99 % of orders decided ≤ 2 s, "
        f"≥ 99 % accepted, generator on schedule): **{results['held_per_second']:g} orders/s**.",
        "",
        _relay_line(results),
        "",
        *_cpu_table(results),
        "",
        "## Memory (RSS, MB)",
        "",
        "| service | idle | under load (peak) |",
        "|---|---|---|",
    ]
    for name, idle in sorted(results["rss_idle_mb"].items()):
        lines.append(f"| {name} | {idle:.0f} | {results['rss_load_mb'].get(name, 0):.0f} |")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for row in results["targets"]:
        lines.append(f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def cache_effect(reads: list[dict[str, Any]]) -> dict[int, tuple[float, float, float]]:
    """Per connection count measured both ways: (rate of the cache hit over the rate of the
    forwarded read, the hit's p50 ms, the forwarded read's p50 ms)."""
    by = {(row["label"], row["connections"]): row for row in reads}
    effect = {}
    for (label, connections), hit in sorted(by.items()):
        forwarded = by.get((FORWARDED, connections))
        if label == CACHE_HIT and forwarded and forwarded["requests_per_second"]:
            rate = hit["requests_per_second"] / forwarded["requests_per_second"]
            effect[connections] = (rate, hit["p50_ms"], forwarded["p50_ms"])
    return effect


def _cache_effect_lines(reads: list[dict[str, Any]]) -> list[str]:
    effect = cache_effect(reads)
    if not effect:
        return []
    parts = [
        f"{rate:.1f} times the forwarded read's rate at {connections} connections "
        f"(p50 {_f(hit_p50, 2)} ms against {_f(forwarded_p50, 2)} ms)"
        for connections, (rate, hit_p50, forwarded_p50) in effect.items()
    ]
    return ["", f"Answered from the gateway's cache, the read goes at {'; '.join(parts)}."]


def _relay_line(results: dict[str, Any]) -> str:
    drained = results.get("relay_drain_per_second")
    if drained is None:
        return "Outbox relay draining a backlog: not measured."
    share = drained / results["rabbitmq_publish_per_second"]
    return (
        f"Outbox relay draining a backlog: **{_f(drained)} events/s**, {share:.0%} of the raw "
        "confirmed-publish rate."
    )


def _cpu_table(results: dict[str, Any]) -> list[str]:
    """Where the CPU of an order goes, at the highest rate held (else the first step)."""
    held = [s for s in results["steps"] if s["held"]]
    step = held[-1] if held else (results["steps"][0] if results["steps"] else None)
    if step is None or not step.get("cpu_ms_per_order_by_process"):
        return []
    split = step["cpu_ms_per_order_by_process"]
    total = sum(split.values())
    lines = [
        "",
        f"## Where an order's CPU goes (at {step['offered_per_second']:g} orders/s)",
        "",
        "| process | CPU ms per order | share |",
        "|---|---|---|",
    ]
    for name, ms in sorted(split.items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
    lines.append(f"| all | {total:.2f} | 100% |")
    return lines


def chart(results: dict[str, Any], path: Path) -> None:
    """Latency (log scale) against offered load, with what was accepted on a second axis."""
    import matplotlib  # noqa: PLC0415 - only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    steps = sorted([*results["steps"], results["overload"]], key=lambda s: s["offered_per_second"])
    offered = [s["offered_per_second"] for s in steps]
    figure, latency = plt.subplots(figsize=(9, 5.5))
    for key, label, style in (
        ("post_p50_ms", "POST p50", "o-"),
        ("post_p99_ms", "POST p99", "o--"),
        ("confirm_p50_ms", "place→confirmed p50", "s-"),
        ("confirm_p99_ms", "place→confirmed p99", "s--"),
    ):
        latency.plot(offered, [s[key] for s in steps], style, label=label)
    latency.axhline(300, color="grey", linewidth=0.8, linestyle=":")
    latency.axhline(2000, color="grey", linewidth=0.8, linestyle=":")
    latency.set_yscale("log")
    latency.set_xlabel("orders/s offered (open loop)")
    latency.set_ylabel("latency, ms (log)")
    accepted = latency.twinx()
    accepted.bar(
        offered,
        [s["accepted_per_second"] for s in steps],
        width=max(offered) / 40,
        alpha=0.2,
        color="green",
        label="accepted/s",
    )
    accepted.set_ylabel("orders/s accepted")
    handles, labels = latency.get_legend_handles_labels()
    more_handles, more_labels = accepted.get_legend_handles_labels()
    latency.legend(handles + more_handles, labels + more_labels, loc="upper left")
    latency.set_title(f"Fleet order pipeline, {results['started_at']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
