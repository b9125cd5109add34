"""The benchmark reads its tools and judges its steps the way its report says."""

from __future__ import annotations

import math
import subprocess
from typing import Any

import pytest

from bench import common
from bench.common import parse_wrk, percentile
from bench.pipeline import Step
from bench.reads import CACHE_HIT, DIRECT, FORWARDED, PAST_THE_CACHE
from bench.report import cache_effect

WRK = """Running 5s test @ http://127.0.0.1:8002/v1/products/x
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  337.25us   8.61ms   95.75%
    Req/Sec     1.83k    93.22     2.01k    68.00%
  Latency Distribution
     50%  1.04ms
     75%  1.20ms
     90%  1.41ms
     99%    2.50s
  18172 requests in 5.00s, 4.70MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   3634.45
Transfer/sec:    962.17KB
"""


def test_wrk_output_gives_rate_percentiles_in_ms_and_every_error() -> None:
    load = parse_wrk("catalog", 4, WRK)
    assert load.requests_per_second == pytest.approx(3634.45)
    assert load.p50_ms == pytest.approx(1.04)
    assert load.p99_ms == pytest.approx(2500.0)
    assert load.errors == 2 + 3 + 7


def test_output_that_is_not_wrks_is_refused() -> None:
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        parse_wrk("x", 4, "wrk: command failed")


def test_wrk_sends_the_headers_of_the_read_past_the_gateways_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=WRK)

    monkeypatch.setattr("shutil.which", lambda _: "/usr/bin/wrk")
    monkeypatch.setattr("subprocess.run", run)
    url = "http://127.0.0.1:8000/v1/products/x"
    common.wrk(FORWARDED, url, connections=4, seconds=1, headers=PAST_THE_CACHE)
    assert ran[0][-3:] == ["-H", "Cache-Control: no-cache, no-store", url]


def _read(label: str, connections: int, rate: float, p50: float) -> dict[str, Any]:
    return {
        "label": label,
        "connections": connections,
        "requests_per_second": rate,
        "p50_ms": p50,
        "p99_ms": 3 * p50,
        "errors": 0,
    }


def test_a_cache_hit_is_measured_against_the_same_read_forwarded() -> None:
    reads = [
        _read(DIRECT, 4, 1500.0, 2.5),
        _read(FORWARDED, 4, 400.0, 10.0),
        _read(FORWARDED, 32, 420.0, 75.0),
        _read(CACHE_HIT, 4, 1200.0, 3.0),
        _read(CACHE_HIT, 32, 1260.0, 25.0),
        _read(CACHE_HIT, 64, 1300.0, 50.0),  # nothing forwarded to compare with
    ]
    assert cache_effect(reads) == {4: (3.0, 3.0, 10.0), 32: (3.0, 25.0, 75.0)}
    assert cache_effect([r for r in reads if r["label"] != CACHE_HIT]) == {}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 1.0) == 3.0
    assert math.isnan(percentile([], 0.5))


def _step(**changes: object) -> Step:
    fields: dict[str, object] = {
        "offered_per_second": 100.0,
        "seconds": 10.0,
        "offered": 1000,
        "accepted": 1000,
        "refused": {},
        "failed": {},
        "refused_with_retry_after": 0,
        "post_p50_ms": 20.0,
        "post_p95_ms": 60.0,
        "post_p99_ms": 90.0,
        "refused_p99_ms": math.nan,
        "schedule_lag_p99_ms": 2.0,
        "decided": 1000,
        "confirmed": 1000,
        "undecided": 0,
        "confirm_p50_ms": 30.0,
        "confirm_p99_ms": 200.0,
        "decided_within_slo_share": 1.0,
        "post_within_slo_share": 1.0,
        "cpu_ms_per_order": 10.0,
        "machine_busy_share": 0.5,
    }
    return Step(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "held"),
    [
        ({}, True),
        ({"accepted": 980}, False),  # more than 1 % refused
        ({"undecided": 1}, False),  # an accepted order never decided
        ({"post_within_slo_share": 0.94}, False),  # POST latency SLO: 95 % within 300 ms
        ({"decided_within_slo_share": 0.985}, False),  # decision SLO: 99 % within 2 s
        ({"schedule_lag_p99_ms": 25.0}, False),  # the generator fell behind its schedule
    ],
)
def test_a_step_holds_its_rate_only_within_every_slo(
    changes: dict[str, object], held: bool
) -> None:
    assert _step(**changes).held is held
