"""Every Fleet dashboard, in the order they are written."""

from __future__ import annotations

from fleet_observability.dashboards.fleet_overview import fleet_overview
from fleet_observability.dashboards.golden_signals import golden_signals
from fleet_observability.dashboards.order_saga import order_saga
from fleet_observability.panels import Board
from fleet_observability.queries import SERVICES


def all_boards() -> list[Board]:
    return [fleet_overview(), order_saga(), *(golden_signals(service) for service in SERVICES)]
