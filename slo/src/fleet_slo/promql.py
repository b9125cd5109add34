"""PromQL of the SLIs, the recorded error ratios and the burn-rate alert conditions."""

from __future__ import annotations

from decimal import Decimal

import promql_parser

from fleet_slo.burn_rates import BurnRateCondition
from fleet_slo.catalog import MetricCatalog
from fleet_slo.model import SLO, EventsSLI, ServiceSLOs

ERROR_RATIO_RECORD = "slo:sli_error:ratio_rate{window}"


def record_name(window: str) -> str:
    return ERROR_RATIO_RECORD.format(window=window)


def _selector(metric: str, matchers: list[str]) -> str:
    return f"{metric}{{{','.join(matchers)}}}"


def _job(service: ServiceSLOs) -> str:
    return f'job="{service.job}"'


def _rate_or_zero(selector: str, window: str) -> str:
    """`sum(rate(...))` that is 0 rather than empty when no series matches (a status never
    answered yet, a service down and no longer scraped): one missing term must not blank a sum."""
    return f"(sum(rate({selector}[{window}])) or vector(0))"


def _terms(terms: list[str]) -> str:
    if len(terms) == 1:
        return terms[0]
    return "(\n  " + "\n  + ".join(terms) + "\n)"


def unanswered_selectors(sli: EventsSLI) -> list[str]:
    """The callers' counters of calls the service left unanswered, each with its job."""
    return [_selector(u.metric, [f'job="{u.job}"', *u.selector]) for u in sli.unanswered]


def error_ratio(service: ServiceSLOs, slo: SLO, window: str, catalog: MetricCatalog) -> str:
    """The share of bad events over `window`: what the recording rules store.

    Events SLIs add the calls the service left unanswered, as its callers count them, to both
    sides, and count a missing term as 0: so a service that is down (nothing of its own scraped)
    burns its budget through its callers' failed calls. With no events at all the ratio is 0/0,
    NaN, which no alert threshold exceeds."""
    sli = slo.sli
    job = _job(service)
    if isinstance(sli, EventsSLI):
        unanswered = [_rate_or_zero(s, window) for s in unanswered_selectors(sli)]
        bad = _rate_or_zero(_selector(sli.metric, [job, *sli.selector, *sli.bad]), window)
        total = _rate_or_zero(_selector(sli.metric, [job, *sli.selector]), window)
        return f"{_terms([bad, *unanswered])}\n/\n{_terms([total, *unanswered])}"
    family = catalog.histogram(sli.histogram)
    assert family is not None  # checked when the file was loaded
    le = f'le="{family.le_value(sli.threshold_seconds)}"'
    fast = _selector(f"{sli.histogram}_bucket", [job, *sli.selector, le])
    total = _selector(f"{sli.histogram}_count", [job, *sli.selector])
    return f"1 - (\n  sum(rate({fast}[{window}]))\n  /\n  sum(rate({total}[{window}]))\n)"


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 0.001, 14.4, 6."""
    return format(value.normalize(), "f")


def _recorded(service: ServiceSLOs, slo: SLO, window: str) -> str:
    return _selector(record_name(window), [f'service="{service.service}"', f'slo="{slo.name}"'])


def burn_condition(service: ServiceSLOs, slo: SLO, condition: BurnRateCondition) -> str:
    threshold = f"({decimal_text(condition.factor)} * {decimal_text(slo.error_budget)})"
    long = _recorded(service, slo, condition.long_window)
    short = _recorded(service, slo, condition.short_window)
    return f"(\n  {long} > {threshold}\nand\n  {short} > {threshold}\n)"


def alert_expression(
    service: ServiceSLOs, slo: SLO, conditions: tuple[BurnRateCondition, ...]
) -> str:
    return "\nor\n".join(burn_condition(service, slo, c) for c in conditions)


def check_parses(expression: str) -> str:
    """Parse with a real PromQL parser; raises ValueError on an invalid expression."""
    promql_parser.parse(expression)
    return expression
