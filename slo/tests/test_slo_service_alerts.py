"""The services' alerts on other signals than SLOs (`recordings` and `alerts` of an SLO file):
refused when they read what the code does not export, linked to hand-written runbooks, and
firing or staying silent as designed in Prometheus' own rule engine (`promtool test rules`).

The worker's reconciliation gauges are per replica: each exports the drift of the last run it
completed itself, and 0 for the completion time until it completes one. The cases below feed
such replicas, restarts and rollouts to the committed rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from slo_test_support import DEFINITIONS, RUNBOOKS, promtool, service_alert_manifests

from fleet_slo.catalog import fleet_metrics
from fleet_slo.definitions import SLOFileError, load_file
from fleet_slo.generate import GENERATED_MARK
from fleet_slo.rules import RUNBOOK_BASE_URL

COMPLETED = "reconciliation_last_completed_timestamp_seconds"
MISMATCHES = "reconciliation_mismatches"
DRIFT, STALE = "ReconciliationDrift", "ReconciliationStale"
TICKET = {"severity": "ticket", "service": "worker"}


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for manifest in service_alert_manifests()
        for group in manifest["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


# --- The definitions ---------------------------------------------------------------------------


def _worker() -> dict[str, Any]:
    data = yaml.safe_load((DEFINITIONS / "worker.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _load(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_file(path, fleet_metrics())


def test_the_committed_worker_file_declares_the_reconciliation_alerts(tmp_path: Path) -> None:
    data = _worker()
    _load(tmp_path, data)
    assert [alert["alert"] for alert in data["alerts"]] == [DRIFT, STALE]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('sum(reconciliation_drift{job="worker"}) > 0', "neither exported by the fleet's code"),
        ("sum(reconciliation_mismatches) > 0", 'selected without job="worker"'),
        ('sum(reconciliation_mismatches{job="orders"}) > 0', 'selected without job="worker"'),
        ('sum(reconciliation_mismatches{job="worker",type="x"}) > 0', r"has no label \['type'\]"),
        ('max(up{job="worker",kind="x"}) == 0', r"up has no label \['kind'\]"),
        ('sum(reconciliation_mismatches{job="worker"} > 0', "not valid PromQL"),
    ],
)
def test_an_alert_reading_what_the_code_does_not_export_is_refused(
    tmp_path: Path, expr: str, problem: str
) -> None:
    data = _worker()
    data["alerts"][0]["expr"] = expr
    with pytest.raises(SLOFileError, match=rf"worker\.yaml: alert '{DRIFT}': .*{problem}"):
        _load(tmp_path, data)


def test_an_alert_may_read_a_recording_only_once_it_is_declared(tmp_path: Path) -> None:
    data = _worker()
    data["recordings"][0]["expr"] = "max(worker:reconciliation_mismatches:last_run)"
    with pytest.raises(SLOFileError, match=r"recording .*neither exported .*nor recorded above"):
        _load(tmp_path, data)


def test_an_alert_named_like_an_slo_alert_or_twice_is_refused(tmp_path: Path) -> None:
    data = _worker()
    data["alerts"][0]["alert"] = "WorkerExportSuccessFastBurn"
    with pytest.raises(SLOFileError, match="an SLO alert has that name"):
        _load(tmp_path, data)
    data = _worker()
    data["alerts"][1]["alert"] = DRIFT
    with pytest.raises(SLOFileError, match="alert names must be unique"):
        _load(tmp_path, data)


@pytest.mark.parametrize(
    ("field", "value"), [("for", "15 minutes"), ("severity", "critical"), ("alert", "drift")]
)
def test_an_alert_with_a_malformed_field_is_refused(tmp_path: Path, field: str, value: str) -> None:
    data = _worker()
    data["alerts"][0][field] = value
    with pytest.raises(SLOFileError, match=rf"alerts\.0\.{field}"):
        _load(tmp_path, data)


# --- The generated rules and their runbooks ----------------------------------------------------


@pytest.mark.parametrize("alert", _alerts(), ids=[a["alert"] for a in _alerts()])
def test_a_service_alert_links_a_runbook_written_by_hand(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    assert alert["labels"] == {"severity": alert["labels"]["severity"], "service": "worker"}
    assert alert["labels"]["severity"] in {"page", "ticket"}
    assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE_URL}/{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"{name} has no runbook at docs/runbooks/{name}.md: write one"
    text = runbook.read_text(encoding="utf-8")
    assert GENERATED_MARK not in text
    assert text.splitlines()[0] == f"# {name}"
    assert f"`{alert['labels']['severity']}`" in text
    assert "severity" in text.lower()


def test_the_recording_is_evaluated_before_the_alerts_that_read_it() -> None:
    (manifest,) = service_alert_manifests()
    (group,) = manifest["spec"]["groups"]
    kinds = ["record" if "record" in rule else "alert" for rule in group["rules"]]
    assert kinds == ["record", "alert", "alert"]


# --- How they fire -----------------------------------------------------------------------------


def _series(metric: str, instance: str, values: str, **labels: str) -> dict[str, str]:
    pairs = {"job": "worker", "instance": instance, **labels}
    matchers = ",".join(f'{key}="{value}"' for key, value in pairs.items())
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def _replica(instance: str, up: str, completed: str, drift: str = "") -> list[dict[str, str]]:
    """One worker replica: `up`, its completion timestamp and (when given) its drift of kind
    missing_reservation, in promtool's notation (`_` no sample, `stale` gone)."""
    series = [_series("up", instance, up), _series(COMPLETED, instance, completed)]
    if drift:
        series.append(_series(MISMATCHES, instance, drift, kind="missing_reservation"))
    return series


def _expect(alert: str, at: str, *, fires: bool) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": TICKET}] if fires else [],
    }


def _run(
    tmp_path: Path, series: list[dict[str, str]], expected: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    (manifest,) = service_alert_manifests()
    groups = manifest["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            if not any("exp_annotations" in a for e in expected for a in e["exp_alerts"]):
                rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    case = {"interval": "1m", "input_series": series, "alert_rule_test": expected}
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [case]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    return subprocess.run(
        [promtool(), "test", "rules", "test.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )


def _assert_passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_drift_found_by_the_latest_run_opens_a_ticket_after_15_minutes(tmp_path: Path) -> None:
    # One replica completes a run at 10m that finds 3 missing reservations.
    series = _replica("a", "1x120", "0x9 600x110", drift="0x9 3x110")
    (drift,) = [a for a in _alerts() if a["alert"] == DRIFT]
    rendered = {
        key: value.replace("{{ $value }}", "3") for key, value in drift["annotations"].items()
    }
    fired = _expect(DRIFT, "30m", fires=True)
    fired["exp_alerts"][0]["exp_annotations"] = rendered
    expected = [_expect(DRIFT, "5m", fires=False), _expect(DRIFT, "20m", fires=False), fired]
    _assert_passes(_run(tmp_path, series, expected))


def test_drift_an_older_replica_still_exports_is_not_the_latest_runs(tmp_path: Path) -> None:
    # Replica a found drift at 10m; replica b completed a later run at 20m and found none.
    series = [
        *_replica("a", "1x120", "0x9 600x110", drift="0x9 3x110"),
        *_replica("b", "1x120", "0x19 1200x100", drift="0x120"),
    ]
    expected = [_expect(DRIFT, at, fires=False) for at in ("30m", "60m", "2h")]
    _assert_passes(_run(tmp_path, series, expected))


def test_drift_outlives_a_rollout_until_the_next_run_finds_none(tmp_path: Path) -> None:
    # Replica a finds drift at 10m and is replaced at 41m by c, which exports 0 for everything
    # until its own run at 100m finds no drift.
    series = [
        *_replica("a", "1x40 stale", "0x9 600x30 stale", drift="0x9 3x30 stale"),
        *_replica("c", "_x41 1x80", "_x41 0x58 6000x21", drift="_x41 0x80"),
    ]
    expected = [
        _expect(DRIFT, "30m", fires=True),
        _expect(DRIFT, "60m", fires=True),
        _expect(DRIFT, "95m", fires=True),
        _expect(DRIFT, "105m", fires=False),
    ]
    _assert_passes(_run(tmp_path, series, expected))


def test_runs_completing_every_period_raise_nothing(tmp_path: Path) -> None:
    hourly = "0x59 3600x59 7200x59 10800x59 14400x59 18000x59 21600x60"
    series = _replica("a", "1x420", hourly, drift="0x420")
    expected = [
        _expect(alert, at, fires=False) for alert in (DRIFT, STALE) for at in ("3h", "4h", "7h")
    ]
    _assert_passes(_run(tmp_path, series, expected))


def test_a_restart_is_no_silence_but_3_periods_without_a_run_are(tmp_path: Path) -> None:
    # Replica a completes a run every hour until 240m and is then replaced by b, whose gauge
    # stays 0: no run completes after the restart.
    before = "0x59 3600x59 7200x59 10800x59 14400x0 stale"
    series = [
        *_replica("a", "1x240 stale", before),
        *_replica("b", "_x241 1x300", "_x241 0x300"),
    ]
    expected = [
        _expect(STALE, "300m", fires=False),  # b exports 0, a's last run was an hour ago
        _expect(STALE, "400m", fires=False),  # 160 minutes since the last run
        _expect(STALE, "450m", fires=True),  # past 3 hours, for 15 minutes
    ]
    _assert_passes(_run(tmp_path, series, expected))


def test_a_fresh_install_gets_3_periods_before_its_silence_counts(tmp_path: Path) -> None:
    # Installed at 200m (its 0, "never", is 200 minutes old at once), it never completes a run.
    series = _replica("a", "_x200 1x300", "_x200 0x300")
    expected = [
        _expect(STALE, "300m", fires=False),
        _expect(STALE, "390m", fires=False),  # up for 3 periods, pending for 15 minutes
        _expect(STALE, "400m", fires=True),
    ]
    _assert_passes(_run(tmp_path, series, expected))


def test_a_worker_that_is_down_is_not_reported_stale(tmp_path: Path) -> None:
    # Scraped but down since 60m (its own alerts cover that): no run completes either.
    series = _replica("a", "1x60 0x300", "0x360")
    _assert_passes(_run(tmp_path, series, [_expect(STALE, "5h", fires=False)]))


def test_a_wrong_expectation_fails_so_the_cases_above_can_fail(tmp_path: Path) -> None:
    series = _replica("a", "1x120", "0x9 600x110", drift="0x120")
    result = _run(tmp_path, series, [_expect(DRIFT, "1h", fires=True)])
    assert result.returncode != 0
    assert DRIFT in result.stdout + result.stderr
