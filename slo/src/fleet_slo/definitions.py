"""Load SLO files: YAML → pydantic model → checked against the metrics the code exports."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from fleet_slo.catalog import MetricCatalog, MetricFamily
from fleet_slo.model import SLO, EventsSLI, ServiceSLOs, UnansweredCalls, matcher_label


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
