"""The shape of an SLO file (`slo/definitions/<service>.yaml`), validated by pydantic.

Two kinds of SLI cover the fleet:

- `events`: a counter of events, some of them bad. Error ratio = rate(bad) / rate(all). Calls
  the service never answered (it was down, refused the connection, timed out, or its callers'
  circuit breaker was open) are not in its own counter; `unanswered` names where its callers count
  them, and those are added to both the bad events and all events.
- `latency`: a histogram and a threshold that must be one of its bucket bounds. Error ratio =
  1 - rate(bucket le=threshold) / rate(count), i.e. the share of events slower than the threshold.
  "p95 < 300 ms" is written as "95 % of requests within 0.3 s": the two say the same, and only the
  ratio form has an error budget that burn-rate alerts can measure.

Beside its SLOs a service may declare `recordings` and `alerts` on signals that are no error
ratio (a gauge of drift found, the timestamp of a job's last success): PromQL written by hand,
checked against the metrics the code exports like the SLIs, each alert with a runbook written by
hand at `docs/runbooks/<alert>.md`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet_slo.burn_rates import MAX_FACTOR, Severity

SLUG = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# One PromQL label matcher: name, operator, double-quoted value.
MATCHER = re.compile(r'^(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)(?P<op>=~|!~|!=|=)"(?:[^"\\]|\\.)*"$')
RESERVED_LABELS = frozenset({"__name__", "le", "job"})
# A Prometheus duration (`for:` of an alert): 15m, 1h30m.
DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
# Alert names as the SLO alerts write them: WorkerEmailDeliveryFastBurn, ReconciliationDrift.
ALERT_NAME = r"^[A-Z][a-zA-Z0-9]*$"
# Recording rules are named level:metric:operations (Prometheus' naming practice).
RECORD_NAME = r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*){2}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_matchers(matchers: list[str]) -> list[str]:
    for matcher in matchers:
        found = MATCHER.match(matcher)
        if found is None:
            raise ValueError(f'{matcher!r} is not a label matcher like status=~"5.."')
        if found["label"] in RESERVED_LABELS:
            raise ValueError(f"{matcher!r}: the label {found['label']!r} is set by the generator")
    return matchers


def matcher_label(matcher: str) -> str:
    found = MATCHER.match(matcher)
    assert found is not None  # validated on load
    return found["label"]


class UnansweredCalls(_Strict):
    """Calls to the service that one of its callers could not get answered, as that caller counts
    them. A service that is down exports nothing (and a request it never received is in none of
    its counters), so without these its SLI would see no bad events during a total outage."""

    job: str = Field(min_length=1, description="the Prometheus `job` label of the caller")
    metric: str = Field(description="a counter series of the caller, with its _total suffix")
    selector: list[str] = Field(
        min_length=1,
        description="which of the caller's events are calls this service left unanswered",
    )

    _matchers = field_validator("selector")(_check_matchers)


class EventsSLI(_Strict):
    kind: Literal["events"]
    metric: str = Field(description="a counter series, with its _total suffix")
    selector: list[str] = Field(default_factory=list, description="which events count at all")
    bad: list[str] = Field(min_length=1, description="which of those events are bad")
    unanswered: list[UnansweredCalls] = Field(
        default_factory=list,
        description="calls it never answered, counted by its callers: bad, and in the total",
    )

    _matchers = field_validator("selector", "bad")(_check_matchers)

    def matchers(self) -> list[str]:
        return [*self.selector, *self.bad]


class LatencySLI(_Strict):
    kind: Literal["latency"]
    histogram: str = Field(description="a histogram name, without _bucket/_count")
    selector: list[str] = Field(default_factory=list, description="which events count at all")
    threshold_seconds: float = Field(gt=0, description="must be one of the histogram's buckets")

    _matchers = field_validator("selector")(_check_matchers)

    def matchers(self) -> list[str]:
        return list(self.selector)


SLI = Annotated[EventsSLI | LatencySLI, Field(discriminator="kind")]


class SLO(_Strict):
    name: str = Field(pattern=SLUG)
    title: str = Field(min_length=1)
    objective: Decimal = Field(gt=0, lt=100, description="percent of good events, e.g. 99.9")
    window: Literal["30d"] = "30d"
    description: str = Field(min_length=1, description="what the SLI measures, for people")
    sli: SLI
    panels: list[str] = Field(min_length=1, description="dashboard panels that show the SLI")
    causes: list[str] = Field(min_length=1, description="likely causes, for the runbook")

    @field_validator("objective", mode="before")
    @classmethod
    def _exact_decimal(cls, value: object) -> object:
        # YAML reads 99.9 as a float; go through its shortest repr so the budget is exactly 0.1 %.
        return Decimal(repr(value)) if isinstance(value, float) else value

    @field_validator("objective")
    @classmethod
    def _budget_can_page(cls, value: Decimal) -> Decimal:
        if (100 - value) / 100 * MAX_FACTOR >= 1:
            lowest = 100 - 100 / MAX_FACTOR
            raise ValueError(
                f"objective {value} % leaves so much budget that a {MAX_FACTOR}x burn would "
                f"need an error ratio above 100 %; use an objective above {lowest:.2f}"
            )
        return value

    @property
    def error_budget(self) -> Decimal:
        """The allowed error ratio, e.g. 0.001 for 99.9 %."""
        return (100 - self.objective) / 100


class Runbook(_Strict):
    """Hand-written facts about the service that make its runbooks specific."""

    release: str = Field(pattern=SLUG, description="Helm release name")
    namespace: str = Field(pattern=SLUG)
    rollout: str = Field(pattern=SLUG, description="Argo Rollouts rollout name")
    dashboard: str = Field(min_length=1, description="Grafana dashboard title")
    dashboard_uid: str = Field(
        pattern=SLUG, description="its uid (deploy/k8s/monitoring/dashboards)"
    )
    dependencies: list[str] = Field(description="the dependency names of its /readyz checks")
    consumes_events: bool = Field(description="True when it has an event queue and a DLQ")
    notes: list[str] = Field(default_factory=list, description="service-specific advice")


class Recording(_Strict):
    """A recording rule of the service's alerts (and its dashboards' readers), evaluated before
    them in the same group."""

    record: str = Field(pattern=RECORD_NAME, description="level:metric:operations")
    description: str = Field(min_length=1, description="what it holds, for people")
    expr: str = Field(min_length=1)


class Alert(_Strict):
    """An alert on a signal that is not an SLO's error ratio. Its runbook is written by hand at
    `docs/runbooks/<alert>.md` (its severity's reasons included), not generated."""

    alert: str = Field(pattern=ALERT_NAME)
    severity: Severity
    pending: str = Field(
        alias="for", pattern=DURATION, description="how long the condition must hold first"
    )
    expr: str = Field(min_length=1, description="PromQL; every fleet metric selected by job")
    summary: str = Field(min_length=1)
    description: str = Field(min_length=1, description="may use {{ $value }}")


class ServiceSLOs(_Strict):
    service: str = Field(pattern=SLUG)
    job: str = Field(min_length=1, description="the Prometheus `job` label of its targets")
    runbook: Runbook
    slos: list[SLO] = Field(min_length=1)
    recordings: list[Recording] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ServiceSLOs:
        for kind, names in (
            ("SLO", [slo.name for slo in self.slos]),
            ("recording", [recording.record for recording in self.recordings]),
            ("alert", [alert.alert for alert in self.alerts]),
        ):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise ValueError(f"{kind} names must be unique within a service: {duplicates}")
        return self
