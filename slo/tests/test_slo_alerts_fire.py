"""The generated availability alerts fire, stay silent and pick severities as designed.

Each case feeds synthetic `http_requests_total` series to Prometheus' own rule engine
(`promtool test rules`) through the committed recording and alerting rules of a service, so a
broken recording rule, a wrong label, a wrong threshold or a lost probe exclusion fails here.
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
ROUTE = "/v1/things"  # any API route: only the probe and metrics routes are excluded


def _series(service: str, route: str, status: str, per_minute: int, minutes: int) -> dict[str, str]:
    labels = f'job="{service}",route="{route}",method="GET",status="{status}"'
    return {"series": f"http_requests_total{{{labels}}}", "values": f"0+{per_minute}x{minutes}"}


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
    tmp_path: Path, service: str, case: dict[str, Any], *, annotations: bool = False
) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": _groups(service, annotations=annotations)}))
    test_file = tmp_path / "test.yml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": [case]})
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
