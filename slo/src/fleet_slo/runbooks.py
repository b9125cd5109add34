"""A runbook per alert: a template per SLI kind and severity, filled with the service's facts."""

from __future__ import annotations

from fleet_slo.burn_rates import Severity, conditions
from fleet_slo.catalog import MetricCatalog
from fleet_slo.model import SLO, EventsSLI, LatencySLI, ServiceSLOs
from fleet_slo.promql import decimal_text, error_ratio, record_name, unanswered_selectors
from fleet_slo.rules import alert_name

RULES_DIR = "deploy/k8s/monitoring/rules"
DEFINITIONS_DIR = "slo/definitions"

_MEANING: dict[Severity, str] = {
    "page": (
        "At 14.4x the budget, 2 % of the 30-day error budget burns every hour and all of it is "
        "gone in about 2 days; at 6x, 5 % burns in 6 hours and all of it in 5 days. Users are "
        "failing right now: work on it immediately."
    ),
    "ticket": (
        "At 3x the budget lasts 10 days; at 1x it lasts exactly the 30-day window, so the SLO "
        "will be missed unless the error ratio drops. Nobody is woken up: handle it during "
        "working hours, within the week."
    ),
}
_AFTERWARDS: dict[Severity, str] = {
    "page": (
        "Write a short incident note (start, detection, cause, fix, budget spent: compare "
        "`slo:sli_error:ratio_rate3d` with the budget). If more than 20 % of the 30-day budget "
        "was spent, hold risky releases of this service until a postmortem lists the fixes."
    ),
    "ticket": (
        "Open a ticket with the error ratio over 1d and 3d and the slow offenders found above; "
        "link it in the service's backlog. Close the alert's ticket only when "
        "`slo:sli_error:ratio_rate3d` is back under the budget."
    ),
}


def _sh(text: str) -> str:
    return f"```sh\n{text}\n```"


def _promql(text: str) -> str:
    return f"```promql\n{text}\n```"


def _pod(service: ServiceSLOs) -> str:
    ns, name = service.runbook.namespace, service.service
    return f'"$(kubectl -n {ns} get pod -l app.kubernetes.io/name={name} -o name | head -1)"'


def _breakdown(service: ServiceSLOs, slo: SLO, catalog: MetricCatalog) -> str:
    """Where the bad events are, split by the labels the metric has."""
    sli = slo.sli
    job = f'job="{service.job}"'
    if isinstance(sli, EventsSLI):
        family = catalog.counter(sli.metric)
        assert family is not None
        selector = ",".join([job, *sli.selector, *sli.bad])
        by = ", ".join(family.labels)
        grouping = f" by ({by})" if by else ""
        own = _promql(f"sum{grouping} (rate({sli.metric}{{{selector}}}[5m]))")
        if not sli.unanswered:
            return own
        unanswered = "\n".join(f"sum(rate({s}[5m]))" for s in unanswered_selectors(sli))
        return (
            f"{own}\n\nCalls it left unanswered, as its callers count them (a rise with nothing "
            f"in the query above: {service.service} is down or unreachable, `up{{{job}}} == 0`):"
            f"\n\n{_promql(unanswered)}"
        )
    family = catalog.histogram(sli.histogram)
    assert family is not None
    selector = ",".join([job, *sli.selector])
    by = ", ".join(["le", *family.labels])
    quantile = decimal_text(slo.objective / 100)
    return _promql(
        f"histogram_quantile({quantile},\n"
        f"  sum by ({by}) (rate({sli.histogram}_bucket{{{selector}}}[5m])))"
    )


def _table_cell(text: str) -> str:
    """Escape pipes (PromQL regex alternations) so they do not split a Markdown table cell."""
    return text.replace("|", "\\|")


def _among(selector: list[str]) -> str:
    return f"those matching `{', '.join(selector)}`" if selector else "all of them"


def _sli_line(slo: SLO) -> str:
    sli = slo.sli
    if isinstance(sli, LatencySLI):
        return (
            f"good: `{sli.histogram}` observations within {sli.threshold_seconds:g} s (bucket "
            f"`le` = {sli.threshold_seconds:g}), among {_among(sli.selector)}"
        )
    line = f"bad: `{sli.metric}` matching `{', '.join(sli.bad)}`, among {_among(sli.selector)}"
    if sli.unanswered:
        callers = ", ".join(f"`{s}`" for s in unanswered_selectors(sli))
        line += f"; plus the calls it left unanswered, counted by its callers: {callers}"
    return line


def _fires_when(slo: SLO, severity: Severity) -> str:
    parts = []
    for c in conditions(severity):
        ratio = decimal_text(c.factor * slo.error_budget * 100)
        parts.append(
            f"error ratio > {decimal_text(c.factor)}x budget ({ratio} %) over both "
            f"{c.long_window} and {c.short_window}"
        )
    return "; or ".join(parts)


def _dependencies(service: ServiceSLOs) -> str:
    rb = service.runbook
    names = ", ".join(f"`{d}`" for d in rb.dependencies) or "none"
    lines = [
        f'- Readiness of its dependencies ({names}): `dependency_up{{job="{service.job}"}} == 0` '
        f"names the failing one (panel *Dependencies up* on **{rb.dashboard}**).",
        f"- Pods: `kubectl -n {rb.namespace} get pods -l app.kubernetes.io/name={service.service}`"
        " — a pod that is not READY gets no traffic; restarts point at crashes or OOM "
        "(`kubectl describe` the pod, look at *Last State*).",
    ]
    if rb.consumes_events:
        pod = _pod(service)
        lines += [
            f'- Dead letters: `dlq_depth{{job="{service.job}"}}` (panel *DLQ depth*); list them '
            f"with `kubectl -n {rb.namespace} exec {pod} -- python -m {service.service} dlq list`"
            " (id, type, error, failed_at, age). Replay only after the cause is fixed, with "
            f"`python -m {service.service} dlq replay [--id EVENT_ID]` in the same pod. Letters "
            "older than `INBOX_RETENTION_DAYS` (default 7) may have been handled before and the "
            "inbox no longer remembers them: `dlq replay` leaves them in the queue (exit 1) "
            "unless `--force`, which applies their effects again if they were.",
            f'- Consumer health: `sum by (outcome) (rate(events_consumed_total{{job="{service.job}'
            f'"}}[5m]))` — a rise of `retried` or `dead_lettered` means its handlers are failing.',
        ]
    return "\n".join(lines)


def render(service: ServiceSLOs, slo: SLO, severity: Severity, catalog: MetricCatalog) -> str:
    rb = service.runbook
    name = alert_name(service, slo, severity)
    ns, svc = rb.namespace, service.service
    recorded = [
        f'{record_name(c.long_window)}{{service="{svc}",slo="{slo.name}"}}'
        for c in conditions(severity)
    ]
    panels = ", ".join(f"*{p}*" for p in slo.panels)
    causes = "\n".join(f"- {cause}" for cause in slo.causes)
    notes = "\n".join(f"- {note}" for note in rb.notes) or "- (none)"
    error_logs = (
        f"kubectl -n {ns} logs -l app.kubernetes.io/name={svc} --since=30m --tail=-1 \\\n"
        """  | jq -c 'select(.level == "error" or (.status // 0) >= 500)'"""
    )
    follow = (
        f"kubectl -n {ns} logs -l app.kubernetes.io/part-of=fleet --since=1h --tail=-1 \\\n"
        "    --max-log-requests=50 --prefix | grep REQUEST_ID"
    )
    changes = (
        f"helm -n {ns} history {rb.release} --max 5\n"
        f"kubectl argo rollouts -n {ns} get rollout {rb.rollout}"
    )
    return f"""<!-- Generated by `python -m fleet_slo generate` from {DEFINITIONS_DIR}/{svc}.yaml; \
edit that file, not this one. -->
# {name}

| | |
|---|---|
| Severity | `{severity}` |
| Service | `{svc}` (Prometheus `job="{service.job}"`) |
| SLO | {slo.title}: {slo.objective} % over {slo.window} |
| SLI | {_table_cell(_sli_line(slo))} |
| Error budget | {decimal_text(slo.error_budget * 100)} % of events per {slo.window} |
| Fires when | {_fires_when(slo, severity)} |
| Rules | `{RULES_DIR}/{svc}-slo.yaml` (group `{svc}-slo-burn-rate-alerts`) |

## What it means

{slo.description}

{_MEANING[severity]}

## 1. Confirm and size it

The recorded error ratio over the alert's long windows (and `_rate5m`, `_rate30m` for "is it
still happening?"):

{_promql(chr(10).join(recorded))}

The SLI itself, over the last 5 minutes:

{_promql(error_ratio(service, slo, "5m", catalog))}

Dashboard **{rb.dashboard}** (uid `{rb.dashboard_uid}`): {panels}. Compare with **Fleet /
overview** to see whether other services burn at the same time (then the cause is shared:
Postgres, RabbitMQ, Redis or the cluster).

## 2. Find where it fails

{_breakdown(service, slo, catalog)}

Likely causes for this SLO:

{causes}

## 3. Logs

Errors and 5xx answers of the last 30 minutes (one JSON object per line, each with `level`,
`request_id` and `trace_id`):

{_sh(error_logs)}

Follow one failing request across the fleet by its `request_id` (it is in every problem+json
answer and access log line; event consumers log it as `correlation_id`, next to the `event_id`):

{_sh(follow)}

## 4. Dependencies

{_dependencies(service)}

## 5. Recent changes

{_sh(changes)}

If the burn started with a release (revision time vs. the first rise of
`{record_name("5m")}`), the release is the suspect until proven otherwise.

## 6. Mitigate and roll back

- A rollout still in progress: stop it and send all traffic back to the stable version:
  `kubectl argo rollouts -n {ns} abort {rb.rollout}`.
- A completed release: roll back to the last good revision from `helm history`:
  `helm -n {ns} rollback {rb.release} <revision> --wait`, then watch
  `kubectl argo rollouts -n {ns} status {rb.rollout}` until it is healthy. `{rb.release}` is the
  umbrella release of the whole fleet: the rollback also reverts any other service changed in the
  same revision (see [the rollback runbook](rollback.md)).
- A failing dependency: fix or fail over the dependency; rolling back `{svc}` will not help.

Service notes:

{notes}

## 7. Afterwards

{_AFTERWARDS[severity]}
"""


def runbooks(service: ServiceSLOs, catalog: MetricCatalog) -> dict[str, str]:
    """File name → text for every alert of the service."""
    severities: tuple[Severity, ...] = ("page", "ticket")
    return {
        f"{alert_name(service, slo, severity)}.md": render(service, slo, severity, catalog)
        for slo in service.slos
        for severity in severities
    }
