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


def error_ratio(service: ServiceSLOs, slo: SLO, window: str, catalog: MetricCatalog) -> str:
    """The share of bad events over `window`: what the recording rules store."""
    sli = slo.sli
    job = _job(service)
    if isinstance(sli, EventsSLI):
        bad = _selector(sli.metric, [job, *sli.selector, *sli.bad])
        total = _selector(sli.metric, [job, *sli.selector])
        return f"sum(rate({bad}[{window}]))\n/\nsum(rate({total}[{window}]))"
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
