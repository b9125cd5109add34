"""The generated availability alerts fire, stay silent and pick severities as designed.

Each case feeds synthetic `http_requests_total` series (and the gateway's counts of the calls it
could not get answered) to Prometheus' own rule engine (`promtool test rules`) through the
committed recording and alerting rules of a service, so a broken recording rule, a wrong label, a
wrong threshold, a lost probe exclusion or an outage the SLI cannot see fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from slo_test_support import alerts, manifests, promtool

HTTP_SERVICES = sorted(
    {
        alert["labels"]["service"]
        for alert in alerts()
        if alert["alert"].endswith("AvailabilityFastBurn")
    }
)
# The services behind the gateway whose availability counts the calls it could not get answered.
FRONTED_SERVICES = sorted(
    {
        alert["labels"]["service"]
        for alert in alerts()
        if alert["alert"].endswith("AvailabilityFastBurn")
    }
    - {"gateway"}
)
ROUTE = "/v1/things"  # any API route: only the probe and metrics routes are excluded


def _series(service: str, route: str, status: str, per_minute: int, minutes: int) -> dict[str, str]:
    labels = f'job="{service}",route="{route}",method="GET",status="{status}"'
    return {"series": f"http_requests_total{{{labels}}}", "values": f"0+{per_minute}x{minutes}"}


def _gateway_series(metric: str, upstream: str, values: str, outcome: str = "") -> dict[str, str]:
    """One of the gateway's counters of its calls to `upstream` (`values` in promtool notation)."""
    labels = f'job="gateway",upstream="{upstream}"' + (f',outcome="{outcome}"' if outcome else "")
    return {"series": f"{metric}{{{labels}}}", "values": values}


def _groups(service: str, *, annotations: bool) -> list[dict[str, Any]]:
    """The service's committed rule groups; without annotations unless asked (promtool compares
    them whenever an alert fires, and most cases here are about labels and timing)."""
    (manifest,) = [
        m for m in manifests() if m["metadata"]["labels"]["app.kubernetes.io/name"] == service
    ]
    groups: list[dict[str, Any]] = manifest["spec"]["groups"]
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    return groups


def _run(
    tmp_path: Path,
    service: str,
    case: dict[str, Any] | list[dict[str, Any]],
    *,
    annotations: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on one case, or several in one run (each is checked on its own)."""
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": _groups(service, annotations=annotations)}))
    test_file = tmp_path / "test.yml"
    cases = case if isinstance(case, list) else [case]
    test_file.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": cases})
    )
    return subprocess.run(
        [promtool(), "test", "rules", test_file.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )


def _expect(service: str, fast: bool, slow: bool, at: str) -> list[dict[str, Any]]:
    name = f"{service.capitalize()}Availability"
    labels = {"slo": "availability", "service": service}
    return [
        {
            "eval_time": at,
            "alertname": f"{name}FastBurn",
            "exp_alerts": [{"exp_labels": labels | {"severity": "page"}}] if fast else [],
        },
        {
            "eval_time": at,
            "alertname": f"{name}SlowBurn",
            "exp_alerts": [{"exp_labels": labels | {"severity": "ticket"}}] if slow else [],
        },
    ]


def _assert_passes(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_an_outage_pages_within_minutes(service: str, tmp_path: Path) -> None:
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 50, 60),
            _series(service, ROUTE, "503", 50, 60),
        ],
        "alert_rule_test": _expect(service, fast=True, slow=True, at="10m"),
    }
    _assert_passes(_run(tmp_path, service, case))


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_a_healthy_service_raises_nothing(service: str, tmp_path: Path) -> None:
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 100, 180),
            _series(service, ROUTE, "404", 20, 180),  # client errors spend no budget
            _series(service, ROUTE, "500", 0, 180),
        ],
        "alert_rule_test": _expect(service, fast=False, slow=False, at="3h"),
    }
    _assert_passes(_run(tmp_path, service, case))


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_failing_probes_and_scrapes_do_not_spend_the_budget(service: str, tmp_path: Path) -> None:
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 100, 120),
            _series(service, "/readyz", "503", 100, 120),
            _series(service, "/metrics", "500", 10, 120),
        ],
        "alert_rule_test": _expect(service, fast=False, slow=False, at="2h"),
    }
    _assert_passes(_run(tmp_path, service, case))


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_a_slow_leak_opens_a_ticket_without_paging(service: str, tmp_path: Path) -> None:
    # 0.5 % errors against a 99.9 % objective: burn rate 5, under both paging thresholds (14.4 and
    # 6) and over the ticket thresholds (3 and 1).
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 995, 360),
            _series(service, ROUTE, "500", 5, 360),
        ],
        "alert_rule_test": _expect(service, fast=False, slow=True, at="6h"),
    }
    _assert_passes(_run(tmp_path, service, case))


def _down_case(service: str, failure: str) -> dict[str, Any]:
    """Healthy for 30 minutes, then the process is gone: its own series go stale (nothing left to
    scrape, not a single 5xx of its own), while the gateway counts the calls it could not get
    answered with `failure` as their outcome, or (`circuit_open`) refused them without trying."""
    upstream = "gateway_upstream_requests_total"
    failing = "0x30 30+30x30"
    circuit_open = failure == "circuit_open"
    return {
        "interval": "1m",
        "input_series": [
            {**_series(service, ROUTE, "200", 60, 30), "values": "0+60x30 stale"},
            _gateway_series(upstream, service, "0+60x30 1800x30", outcome="ok"),
            *([] if circuit_open else [_gateway_series(upstream, service, failing, failure)]),
            _gateway_series(
                "gateway_circuit_rejected_total", service, failing if circuit_open else "0x60"
            ),
        ],
        "alert_rule_test": _expect(service, fast=True, slow=True, at="40m"),
    }


@pytest.mark.parametrize("service", FRONTED_SERVICES)
def test_a_service_down_pages_through_the_calls_the_gateway_could_not_get_answered(
    service: str, tmp_path: Path
) -> None:
    failures = ["unavailable", "timeout", "bad_gateway", "circuit_open"]
    _assert_passes(_run(tmp_path, service, [_down_case(service, f) for f in failures]))


@pytest.mark.parametrize("service", FRONTED_SERVICES)
def test_the_gateway_counting_calls_answered_raises_nothing(service: str, tmp_path: Path) -> None:
    # A 5xx the service answered is its own to count (`upstream_error` at the gateway is the same
    # answer seen from the other side, not an unanswered call); the gateway's other counters at 0.
    upstream = "gateway_upstream_requests_total"
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 1000, 120),
            _gateway_series(upstream, service, "0+900x120", outcome="ok"),
            _gateway_series(upstream, service, "0+100x120", outcome="upstream_error"),
            _gateway_series(upstream, service, "0x120", outcome="unavailable"),
            _gateway_series("gateway_circuit_rejected_total", service, "0x120"),
        ],
        "alert_rule_test": _expect(service, fast=False, slow=False, at="2h"),
    }
    _assert_passes(_run(tmp_path, service, case))


@pytest.mark.parametrize("service", HTTP_SERVICES)
def test_no_traffic_at_all_raises_nothing(service: str, tmp_path: Path) -> None:
    # Every counter scraped and flat: a ratio of 0 / 0, which must not page anyone.
    case = {
        "interval": "1m",
        "input_series": [
            {**_series(service, ROUTE, "200", 0, 180), "values": "0x180"},
            {**_series(service, ROUTE, "500", 0, 180), "values": "0x180"},
            _gateway_series("gateway_upstream_requests_total", service, "0x180", "unavailable"),
            _gateway_series("gateway_circuit_rejected_total", service, "0x180"),
        ],
        "alert_rule_test": _expect(service, fast=False, slow=False, at="3h"),
    }
    _assert_passes(_run(tmp_path, service, case))


def test_a_wrong_expectation_fails_so_the_cases_above_can_fail(tmp_path: Path) -> None:
    service = HTTP_SERVICES[0]
    case = {
        "interval": "1m",
        "input_series": [_series(service, ROUTE, "200", 100, 60)],
        "alert_rule_test": _expect(service, fast=True, slow=False, at="30m"),
    }
    result = _run(tmp_path, service, case)
    assert result.returncode != 0
    assert "FastBurn" in result.stdout + result.stderr


def test_a_page_carries_its_rendered_summary_description_and_runbook(tmp_path: Path) -> None:
    service = HTTP_SERVICES[0]
    expected = _expect(service, fast=True, slow=False, at="10m")[:1]
    (rule,) = [a for a in alerts() if a["alert"] == expected[0]["alertname"]]
    rendered = {
        key: value.replace("{{ $value | humanizePercentage }}", "50%")
        for key, value in rule["annotations"].items()
    }
    assert rendered["runbook_url"].endswith(f"docs/runbooks/{rule['alert']}.md")
    expected[0]["exp_alerts"][0]["exp_annotations"] = rendered
    case = {
        "interval": "1m",
        "input_series": [
            _series(service, ROUTE, "200", 50, 60),
            _series(service, ROUTE, "503", 50, 60),
        ],
        "alert_rule_test": expected,
    }
    _assert_passes(_run(tmp_path, service, case, annotations=True))
