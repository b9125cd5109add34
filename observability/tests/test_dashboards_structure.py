"""Each dashboard is well formed: unique uid, a Prometheus datasource variable, complete panels,
and queries that name their service through the `job` label."""

from __future__ import annotations

import json
from typing import Any

from fleet_observability import promql, render
from fleet_observability.panels import DATASOURCE_VARIABLE
from fleet_observability.queries import SERVICES


def documents() -> list[dict[str, Any]]:
    return [json.loads(text) for text in render.render_all().values()]


def test_every_dashboard_has_a_unique_uid() -> None:
    uids = [document["uid"] for document in documents()]
    assert len(uids) == len(set(uids)) == len(SERVICES) + 2
    assert all(uids)


def test_every_dashboard_has_a_prometheus_datasource_variable_used_by_every_panel() -> None:
    for document in documents():
        variables = document["templating"]["list"]
        datasource = [v for v in variables if v["type"] == "datasource"]
        assert [(v["name"], v["query"]) for v in datasource] == [
            (DATASOURCE_VARIABLE, "prometheus")
        ], document["uid"]
        for panel in render.panels(document):
            expected = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
            assert panel["datasource"] == expected, panel["title"]
            assert all(target["datasource"] == expected for target in panel["targets"])


def test_every_panel_has_a_title_and_at_least_one_target() -> None:
    for document in documents():
        panels = list(render.panels(document))
        assert panels, document["uid"]
        for panel in panels:
            assert panel.get("title"), (document["uid"], panel.get("id"))
            assert panel.get("targets"), (document["uid"], panel["title"])
            assert all(target.get("expr") for target in panel["targets"]), panel["title"]


def test_panel_ids_are_unique_within_a_dashboard() -> None:
    for document in documents():
        ids = [panel["id"] for panel in document["panels"]]
        assert len(ids) == len(set(ids)), document["uid"]


def test_every_selector_names_fleet_services_by_job() -> None:
    for document in documents():
        for panel in render.panels(document):
            for target in panel["targets"]:
                for matchers in promql.selector_matchers(target["expr"]):
                    assert "job" in matchers, target["expr"]
                    assert set(matchers["job"].split("|")) <= set(SERVICES), target["expr"]


def test_a_service_dashboard_queries_only_its_own_job() -> None:
    by_uid = {document["uid"]: document for document in documents()}
    for service in SERVICES:
        document = by_uid[f"fleet-{service}"]
        for panel in render.panels(document):
            for target in panel["targets"]:
                jobs = {m["job"] for m in promql.selector_matchers(target["expr"])}
                assert jobs == {service}, (service, target["expr"])


def test_a_service_dashboard_covers_the_golden_signals_and_its_messaging() -> None:
    by_uid = {document["uid"]: document for document in documents()}
    for service in SERVICES:
        exprs = " ".join(
            target["expr"]
            for panel in render.panels(by_uid[f"fleet-{service}"])
            for target in panel["targets"]
        )
        for metric in (
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "http_requests_in_flight",
            "dependency_up",
        ):
            assert metric in exprs, (service, metric)
        assert ("dlq_depth" in exprs) is (service in {"catalog", "orders", "worker"}), service
        assert ("outbox_lag_seconds" in exprs) is (service in {"auth", "catalog", "orders"})
