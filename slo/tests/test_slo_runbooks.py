"""Every alert links a runbook that exists and says what to check for that service and SLO."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slo_test_support import DEFINITIONS, REPO_ROOT, RUNBOOKS, alerts

from fleet_slo.burn_rates import Severity
from fleet_slo.catalog import fleet_metrics
from fleet_slo.definitions import load_all
from fleet_slo.model import ServiceSLOs
from fleet_slo.rules import RUNBOOK_BASE_URL, alert_name

DASHBOARDS = REPO_ROOT / "deploy/k8s/monitoring/dashboards"
SERVICES = load_all(DEFINITIONS, fleet_metrics())
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")


@pytest.mark.parametrize("alert", alerts(), ids=[a["alert"] for a in alerts()])
def test_alert_runbook_url_points_at_an_existing_runbook(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    url = alert["annotations"]["runbook_url"]
    assert url == f"{RUNBOOK_BASE_URL}/{name}.md"
    assert RUNBOOK_BASE_URL == "https://github.com/fleet/fleet/blob/main/docs/runbooks"
    path = RUNBOOKS / url.removeprefix(f"{RUNBOOK_BASE_URL}/")
    assert path.is_file(), f"alert {name} has no runbook at {path.relative_to(REPO_ROOT)}"


@pytest.mark.parametrize("alert", alerts(), ids=[a["alert"] for a in alerts()])
def test_alert_carries_severity_slo_and_service_labels_and_annotations(
    alert: dict[str, Any],
) -> None:
    assert set(alert["labels"]) == {"severity", "slo", "service"}
    assert alert["labels"]["severity"] in {"page", "ticket"}
    assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}


def _cases() -> list[tuple[ServiceSLOs, str, Severity]]:
    return [
        (service, slo.name, severity)
        for service in SERVICES
        for slo in service.slos
        for severity in SEVERITIES
    ]


@pytest.mark.parametrize(
    ("service", "slo_name", "severity"),
    _cases(),
    ids=[f"{s.service}-{n}-{sev}" for s, n, sev in _cases()],
)
def test_runbook_names_the_service_specific_checks_and_rollback(
    service: ServiceSLOs, slo_name: str, severity: Severity
) -> None:
    slo = next(s for s in service.slos if s.name == slo_name)
    name = alert_name(service, slo, severity)
    text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
    rb, svc = service.runbook, service.service
    assert text.splitlines()[1] == f"# {name}"
    assert f"`{severity}`" in text
    assert f'service="{svc}",slo="{slo.name}"' in text
    assert f"helm -n {rb.namespace} rollback {rb.release} <revision>" in text
    assert f"kubectl argo rollouts -n {rb.namespace} abort {rb.rollout}" in text
    assert f"helm -n {rb.namespace} history {rb.release}" in text
    assert f'dependency_up{{job="{service.job}"}}' in text
    assert "request_id" in text
    assert "correlation_id" in text
    assert f"**{rb.dashboard}**" in text
    for panel in slo.panels:
        assert f"*{panel}*" in text
    for cause in slo.causes:
        assert cause in text
    for note in rb.notes:
        assert note in text
    has_dlq_command = f"python -m {svc} dlq list" in text
    assert has_dlq_command == rb.consumes_events


def test_runbooks_of_different_slos_differ_beyond_their_names() -> None:
    bodies = {
        path.name: "\n".join(path.read_text(encoding="utf-8").splitlines()[2:])
        for path in RUNBOOKS.glob("*.md")
    }
    page_bodies = [body for name, body in bodies.items() if name.endswith("FastBurn.md")]
    assert len(set(page_bodies)) == len(page_bodies)


@pytest.mark.parametrize("service", SERVICES, ids=[s.service for s in SERVICES])
def test_runbook_panels_exist_on_the_named_dashboard(service: ServiceSLOs) -> None:
    board = DASHBOARDS / f"{service.runbook.dashboard_uid}.json"
    assert board.is_file(), f"runbooks of {service.service} name a dashboard that is not at {board}"
    dashboard = json.loads(board.read_text(encoding="utf-8"))
    assert dashboard["title"] == service.runbook.dashboard
    titles = {panel.get("title") for panel in dashboard.get("panels", [])}
    for slo in service.slos:
        missing = [p for p in [*slo.panels, "Dependencies up"] if p not in titles]
        assert not missing, f"{board.name} has no panel {missing}"
    if service.runbook.consumes_events:
        assert "DLQ depth" in titles
