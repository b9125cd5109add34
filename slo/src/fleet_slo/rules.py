"""One PrometheusRule per service: error-ratio recording rules and burn-rate alerts per SLO; and
one more for a service that declares alerts on other signals (`<service>-alerts`)."""

from __future__ import annotations

from typing import Any

from fleet_slo.burn_rates import RECORDING_WINDOWS, Severity, conditions
from fleet_slo.catalog import MetricCatalog
from fleet_slo.model import SLO, Alert, ServiceSLOs
from fleet_slo.promql import (
    alert_expression,
    check_parses,
    decimal_text,
    error_ratio,
    record_name,
)

RUNBOOK_BASE_URL = "https://github.com/fleet/fleet/blob/main/docs/runbooks"
_ALERT_SUFFIX: dict[Severity, str] = {"page": "FastBurn", "ticket": "SlowBurn"}
_SEVERITIES: tuple[Severity, ...] = ("page", "ticket")


def _camel(*parts: str) -> str:
    return "".join(word.capitalize() for part in parts for word in part.split("-"))


def alert_name(service: ServiceSLOs, slo: SLO, severity: Severity) -> str:
    """E.g. GatewayAvailabilityFastBurn (page) and GatewayAvailabilitySlowBurn (ticket)."""
    return _camel(service.service, slo.name) + _ALERT_SUFFIX[severity]


def runbook_url(alert: str) -> str:
    return f"{RUNBOOK_BASE_URL}/{alert}.md"


def alert_names(service: ServiceSLOs) -> list[str]:
    return [alert_name(service, slo, sev) for slo in service.slos for sev in _SEVERITIES]


def _recording_rules(service: ServiceSLOs, slo: SLO, catalog: MetricCatalog) -> list[Any]:
    return [
        {
            "record": record_name(window),
            "expr": check_parses(error_ratio(service, slo, window, catalog)),
            "labels": {"service": service.service, "slo": slo.name},
        }
        for window in RECORDING_WINDOWS
    ]


def _alert(service: ServiceSLOs, slo: SLO, severity: Severity) -> dict[str, Any]:
    name = alert_name(service, slo, severity)
    budget = decimal_text(slo.error_budget * 100)
    pairs = conditions(severity)
    how = ", or ".join(
        f"{decimal_text(c.factor)}x over {c.long_window} and {c.short_window}" for c in pairs
    )
    consequence = (
        "At this rate the 30-day error budget is gone within days: act now."
        if severity == "page"
        else "Not urgent, but the budget will not last the 30-day window: fix it this week."
    )
    return {
        "alert": name,
        "expr": check_parses(alert_expression(service, slo, pairs)),
        "labels": {"severity": severity, "slo": slo.name, "service": service.service},
        "annotations": {
            "summary": f"{service.service}: {slo.title} is burning its error budget "
            f"({'fast' if severity == 'page' else 'slowly'})",
            "description": (
                f"{slo.title}: objective {slo.objective} % over {slo.window} (error budget "
                f"{budget} %). Error ratio over the long window is {{{{ $value | "
                f"humanizePercentage }}}}, a burn rate of at least {how}. {consequence}"
            ),
            "runbook_url": runbook_url(name),
        },
    }


def _labels(service: ServiceSLOs, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service.service,
        "app.kubernetes.io/part-of": "fleet",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "fleet-slo",
    }


def _service_alert(service: ServiceSLOs, alert: Alert) -> dict[str, Any]:
    return {
        "alert": alert.alert,
        "expr": check_parses(alert.expr.strip()),
        "for": alert.pending,
        "labels": {"severity": alert.severity, "service": service.service},
        "annotations": {
            "summary": alert.summary.strip(),
            "description": alert.description.strip(),
            "runbook_url": runbook_url(alert.alert),
        },
    }


def service_alerts_rule(service: ServiceSLOs) -> dict[str, Any] | None:
    """The service's alerts on other signals than SLOs, after the recordings they read (one
    group: a group evaluates its rules in order), or None when it declares none."""
    if not service.recordings and not service.alerts:
        return None
    rules: list[Any] = [
        {"record": recording.record, "expr": check_parses(recording.expr.strip())}
        for recording in service.recordings
    ]
    rules.extend(_service_alert(service, alert) for alert in service.alerts)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"{service.service}-alerts", "labels": _labels(service, "alerts")},
        "spec": {"groups": [{"name": f"{service.service}-alerts", "rules": rules}]},
    }


def prometheus_rule(service: ServiceSLOs, catalog: MetricCatalog) -> dict[str, Any]:
    recording: list[Any] = []
    alerts: list[Any] = []
    for slo in service.slos:
        recording.extend(_recording_rules(service, slo, catalog))
        alerts.extend(_alert(service, slo, severity) for severity in _SEVERITIES)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"{service.service}-slo", "labels": _labels(service, "slo")},
        "spec": {
            "groups": [
                {"name": f"{service.service}-slo-error-ratios", "rules": recording},
                {"name": f"{service.service}-slo-burn-rate-alerts", "rules": alerts},
            ]
        },
    }
