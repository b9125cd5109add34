"""The metrics the fleet's code really exports, read from the modules that declare them.

SLO files may only refer to what is in this catalog, so a renamed metric, a dropped label or a
histogram bucket that does not exist breaks `python -m fleet_slo generate` instead of leaving an
alert that silently never fires.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.utils import floatToGoString

# The exact text the client library writes for a float (`le` values); untyped upstream.
_go_float: Callable[[float], str] = floatToGoString

# Every module of the fleet that declares a Counter, Gauge or Histogram.
METRIC_MODULES = (
    "chassis.metrics",
    "chassis.messaging.metrics",
    "chassis.loops",
    "chassis.retention",
    "gateway.metrics",
    "catalog.cache",
    "catalog.handlers",
    "orders.metrics",
    "worker.metrics",
)


@dataclass(frozen=True)
class MetricFamily:
    name: str  # the family name, as `describe()` reports it (a counter without `_total`)
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()  # finite upper bounds of a histogram

    @property
    def series(self) -> tuple[str, ...]:
        """The series names Prometheus stores for this family."""
        if self.kind == "counter":
            return (f"{self.name}_total", f"{self.name}_created")
        if self.kind == "histogram":
            suffixes = ("_bucket", "_count", "_sum", "_created")
            return tuple(self.name + suffix for suffix in suffixes)
        return (self.name,)

    def le_value(self, bound: float) -> str:
        """The `le` label value the client library exposes for a bucket bound (1 → "1.0")."""
        return _go_float(bound)


@dataclass(frozen=True)
class MetricCatalog:
    families: Mapping[str, MetricFamily]

    def counter(self, series: str) -> MetricFamily | None:
        """The counter family whose `_total` series is `series`."""
        family = self.families.get(series.removesuffix("_total"))
        if family is None or family.kind != "counter" or not series.endswith("_total"):
            return None
        return family

    def histogram(self, name: str) -> MetricFamily | None:
        family = self.families.get(name)
        return family if family is not None and family.kind == "histogram" else None

    def series_names(self) -> frozenset[str]:
        return frozenset(s for family in self.families.values() for s in family.series)

    def counter_names(self) -> list[str]:
        return sorted(f.series[0] for f in self.families.values() if f.kind == "counter")

    def histogram_names(self) -> list[str]:
        return sorted(f.name for f in self.families.values() if f.kind == "histogram")


def _family(metric: MetricWrapperBase) -> MetricFamily:
    (described,) = metric.describe()
    # The client library keeps label names and bucket bounds private; reading them here is the
    # one place that depends on it (guarded by tests that check known values).
    labels = tuple(getattr(metric, "_labelnames", ()))
    bounds: tuple[float, ...] = ()
    if isinstance(metric, Histogram):
        bounds = tuple(b for b in getattr(metric, "_upper_bounds", ()) if b != float("inf"))
    return MetricFamily(name=described.name, kind=described.type, labels=labels, buckets=bounds)


def _declared(modules: Iterable[str]) -> dict[str, MetricFamily]:
    families: dict[str, MetricFamily] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, Counter | Gauge | Histogram):
                family = _family(value)
                families[family.name] = family
    return families


@cache
def fleet_metrics() -> MetricCatalog:
    """The catalog of every metric the fleet exports (imports the services' metric modules)."""
    families = _declared(METRIC_MODULES)
    registered = {metric.name for metric in REGISTRY.collect()}
    missing = sorted(set(families) - registered)
    if missing:
        raise RuntimeError(f"metrics declared but not in the default registry: {missing}")
    return MetricCatalog(MappingProxyType(dict(sorted(families.items()))))
