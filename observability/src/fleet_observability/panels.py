"""A small declarative layer over grafana-foundation-sdk: rows of panels, each with its queries.

Dashboards are described as data (`Board` of `Row`s of `Graph`s) and turned into the SDK's models
in one place, so every panel gets the same datasource, ids, grid and query settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Graph:
    """One panel: a time series by default, a stat (latest value) when `kind="stat"`."""

    title: str
    queries: Sequence[Query]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"
    width: int = 8
    height: int = 8
    # Value -> (text, colour), e.g. the states of a circuit breaker.
    mappings: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    title: str
    graphs: Sequence[Graph]


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    tags: Sequence[str]
    rows: Sequence[Row]


def q(expr: str, legend: str = "") -> Query:
    return Query(expr=expr, legend=legend)


def build(board: Board) -> model.Dashboard:
    """The SDK model of a board: datasource variable first, panels numbered in reading order."""
    dashboard = (
        sdk.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(list(board.tags))
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            sdk.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus")
        )
    )
    panel_id = 0
    for row in board.rows:
        panel_id += 1
        dashboard = dashboard.with_row(sdk.Row(row.title).id(panel_id))
        for graph in row.graphs:
            panel_id += 1
            dashboard = dashboard.with_panel(_panel(graph, panel_id))
    return dashboard.build()


def _panel(graph: Graph, panel_id: int) -> timeseries.Panel | stat.Panel:
    panel = stat.Panel() if graph.kind == "stat" else timeseries.Panel()
    panel = (
        panel.id(panel_id)
        .title(graph.title)
        .datasource(DATASOURCE)
        .unit(graph.unit)
        .span(graph.width)
        .height(graph.height)
    )
    if graph.description:
        panel = panel.description(graph.description)
    if graph.mappings:
        panel = panel.mappings(
            [
                model.ValueMap(
                    options={
                        value: model.ValueMappingResult(text=text, color=colour, index=index)
                        for index, (value, (text, colour)) in enumerate(graph.mappings.items())
                    }
                )
            ]
        )
    for index, query in enumerate(graph.queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend or "__auto")
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
        panel = panel.with_target(target.instant() if graph.kind == "stat" else target.range())
    return panel
