"""Multiwindow, multi-burn-rate alerting, as in the Google SRE workbook ("Alerting on SLOs", 6).

For a 30-day SLO: page when 2 % of the budget burns in 1 hour or 5 % in 6 hours, open a ticket
when 10 % burns in 3 days (and, earlier, at 3x over a day). Each long window is paired with a short
window of 1/12 of its length, so an alert stops soon after the burn stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRateCondition:
    severity: Severity
    long_window: str
    short_window: str
    factor: Decimal  # the burn rate: how many times faster than "exactly spend the budget"


BURN_RATE_CONDITIONS: tuple[BurnRateCondition, ...] = (
    BurnRateCondition("page", "1h", "5m", Decimal("14.4")),
    BurnRateCondition("page", "6h", "30m", Decimal("6")),
    BurnRateCondition("ticket", "1d", "2h", Decimal("3")),
    BurnRateCondition("ticket", "3d", "6h", Decimal("1")),
)

# Every window an error ratio is recorded over, shortest first.
RECORDING_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

# The fastest burn rate any alert uses: an objective whose budget times this is 1 or more could
# never page, since an error ratio cannot exceed 1.
MAX_FACTOR = max(condition.factor for condition in BURN_RATE_CONDITIONS)


def conditions(severity: Severity) -> tuple[BurnRateCondition, ...]:
    return tuple(c for c in BURN_RATE_CONDITIONS if c.severity == severity)
