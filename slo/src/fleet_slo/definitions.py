"""Load SLO files: YAML → pydantic model → checked against the metrics the code exports."""

from __future__ import annotations

from pathlib import Path

import promql_parser
import yaml
from pydantic import ValidationError

from fleet_slo.catalog import MetricCatalog, MetricFamily
from fleet_slo.model import SLO, EventsSLI, ServiceSLOs, UnansweredCalls, matcher_label
from fleet_slo.rules import alert_names

# Series Prometheus makes itself that a service's alerts may read (with the service's job).
PROMETHEUS_SERIES = frozenset({"up"})


class SLOFileError(ValueError):
    """An SLO file that cannot be turned into rules; the message names the file and the field."""


def load_file(path: Path, catalog: MetricCatalog) -> ServiceSLOs:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SLOFileError(f"{path.name}: not valid YAML: {exc}") from exc
    try:
        service = ServiceSLOs.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SLOFileError(f"{path.name}: {problems}") from exc
    if path.stem != service.service:
        raise SLOFileError(f"{path.name}: declares service {service.service!r}; name it after it")
    for slo in service.slos:
        problem = _metric_problem(slo, catalog)
        if problem:
            raise SLOFileError(f"{path.name}: SLO {slo.name!r}: {problem}")
    recorded: set[str] = set()
    for recording in service.recordings:
        problem = _expression_problem(recording.expr, service, catalog, recorded)
        if problem:
            raise SLOFileError(f"{path.name}: recording {recording.record!r}: {problem}")
        recorded.add(recording.record)
    taken = set(alert_names(service))
    for alert in service.alerts:
        if alert.alert in taken:
            raise SLOFileError(f"{path.name}: alert {alert.alert!r}: an SLO alert has that name")
        problem = _expression_problem(alert.expr, service, catalog, recorded)
        if problem:
            raise SLOFileError(f"{path.name}: alert {alert.alert!r}: {problem}")
    return service


def load_all(directory: Path, catalog: MetricCatalog) -> list[ServiceSLOs]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise SLOFileError(f"no SLO files (*.yaml) in {directory}")
    return [load_file(path, catalog) for path in files]


def _metric_problem(slo: SLO, catalog: MetricCatalog) -> str | None:
    sli = slo.sli
    family: MetricFamily | None
    if isinstance(sli, EventsSLI):
        family = catalog.counter(sli.metric)
        if family is None:
            return (
                f"metric {sli.metric!r} is not a counter the fleet's code exports "
                f"(known counters: {', '.join(catalog.counter_names())})"
            )
    else:
        family = catalog.histogram(sli.histogram)
        if family is None:
            return (
                f"histogram {sli.histogram!r} is not exported by the fleet's code "
                f"(known histograms: {', '.join(catalog.histogram_names())})"
            )
        if sli.threshold_seconds not in family.buckets:
            bounds = ", ".join(f"{b:g}" for b in family.buckets)
            return (
                f"threshold_seconds {sli.threshold_seconds:g} is not a bucket bound of "
                f"{family.name} (its buckets: {bounds}); only a declared bound can be measured"
            )
    unknown = sorted({matcher_label(m) for m in sli.matchers()} - set(family.labels))
    if unknown:
        return f"{family.name} has no label {unknown} (its labels: {list(family.labels)})"
    if isinstance(sli, EventsSLI):
        return next(filter(None, (_unanswered_problem(u, catalog) for u in sli.unanswered)), None)
    return None


def _unanswered_problem(calls: UnansweredCalls, catalog: MetricCatalog) -> str | None:
    family = catalog.counter(calls.metric)
    if family is None:
        return (
            f"unanswered: metric {calls.metric!r} is not a counter the fleet's code exports "
            f"(known counters: {', '.join(catalog.counter_names())})"
        )
    unknown = sorted({matcher_label(m) for m in calls.selector} - set(family.labels))
    if unknown:
        return (
            f"unanswered: {family.name} has no label {unknown} (its labels: {list(family.labels)})"
        )
    return None


def _expression_problem(
    expression: str, service: ServiceSLOs, catalog: MetricCatalog, recorded: set[str]
) -> str | None:
    """What is wrong with a hand-written expression of a service's recording or alert: not
    PromQL; a series neither exported by the fleet's code, nor made by Prometheus (`up`), nor
    recorded above in the file; a fleet series without the service's `job`; or a matcher on a
    label the metric does not have."""
    try:
        parsed = promql_parser.parse(expression)
    except ValueError as exc:
        return f"not valid PromQL: {exc}"
    selectors: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)

    promql_parser.walk(parsed, visit)
    families = {series: family for family in catalog.families.values() for series in family.series}
    job = f'job="{service.job}"'
    for selector in selectors:
        name = selector.name or ""
        if name in recorded:
            continue
        family = families.get(name)
        if family is None and name not in PROMETHEUS_SERIES:
            return (
                f"{name or selector} is neither exported by the fleet's code, nor made by "
                f"Prometheus ({', '.join(sorted(PROMETHEUS_SERIES))}), nor recorded above"
            )
        matchers = {
            f'{m.name}="{m.value}"'
            for m in selector.matchers.matchers
            if m.op == promql_parser.MatchOp.Equal
        }
        if job not in matchers:
            return f"{name} is selected without {job}: the series of every service share names"
        allowed = {"job", *(family.labels if family else ())}
        if name.endswith("_bucket"):
            allowed.add("le")
        unknown = sorted({m.name for m in selector.matchers.matchers} - allowed)
        if unknown:
            return f"{name} has no label {unknown} (its labels: {sorted(allowed)})"
    return None
