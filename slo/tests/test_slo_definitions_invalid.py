"""An SLO file that cannot be measured or alerted on is refused, with an error naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from slo_test_support import DEFINITIONS

from fleet_slo.__main__ import main
from fleet_slo.catalog import fleet_metrics
from fleet_slo.definitions import SLOFileError, load_file
from fleet_slo.runbooks import DEFINITIONS_DIR


def _orders() -> dict[str, Any]:
    data = yaml.safe_load((DEFINITIONS / "orders.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _load(tmp_path: Path, data: dict[str, Any], name: str = "orders.yaml") -> None:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    load_file(path, fleet_metrics())


def test_the_committed_orders_file_is_valid(tmp_path: Path) -> None:
    _load(tmp_path, _orders())  # the baseline the other tests break one field of


@pytest.mark.parametrize("objective", [100, 100.5, 150])
def test_objective_of_100_percent_or_more_is_refused(tmp_path: Path, objective: float) -> None:
    data = _orders()
    data["slos"][0]["objective"] = objective
    with pytest.raises(SLOFileError, match=r"orders\.yaml: slos\.0\.objective: .*less than 100"):
        _load(tmp_path, data)


def test_objective_too_low_for_a_fast_burn_to_ever_page_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["objective"] = 90
    with pytest.raises(SLOFileError, match=r"slos\.0\.objective: .*above 93\.06"):
        _load(tmp_path, data)


def test_unknown_counter_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["sli"]["metric"] = "http_request_total"
    with pytest.raises(
        SLOFileError,
        match=r"'http_request_total' is not a counter .*known "
        r"counters: .*http_requests_total",
    ):
        _load(tmp_path, data)


def test_counter_without_its_total_suffix_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["sli"]["metric"] = "http_requests"
    with pytest.raises(SLOFileError, match="is not a counter the fleet's code exports"):
        _load(tmp_path, data)


def test_unknown_histogram_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][1]["sli"]["histogram"] = "order_duration_seconds"
    with pytest.raises(SLOFileError, match="'order_duration_seconds' is not exported"):
        _load(tmp_path, data)


def test_threshold_between_bucket_bounds_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][1]["sli"]["threshold_seconds"] = 3  # the saga histogram has 2.5 and 5
    with pytest.raises(SLOFileError, match=r"threshold_seconds 3 is not a bucket bound .*2\.5, 5"):
        _load(tmp_path, data)


def test_label_the_metric_does_not_have_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["sli"]["bad"] = ['code=~"5.."']
    with pytest.raises(SLOFileError, match=r"http_requests has no label \['code'\]"):
        _load(tmp_path, data)


def test_unanswered_calls_counted_by_an_unknown_counter_are_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["sli"]["unanswered"][0]["metric"] = "gateway_upstream_request_total"
    with pytest.raises(
        SLOFileError, match=r"unanswered: metric 'gateway_upstream_request_total' is not a counter"
    ):
        _load(tmp_path, data)


def test_unanswered_calls_by_a_label_the_counter_does_not_have_are_refused(
    tmp_path: Path,
) -> None:
    data = _orders()
    data["slos"][0]["sli"]["unanswered"][0]["selector"] = ['service="orders"']
    with pytest.raises(
        SLOFileError, match=r"unanswered: gateway_upstream_requests has no label \['service'\]"
    ):
        _load(tmp_path, data)


def test_malformed_matcher_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["sli"]["bad"] = ["status=~5.."]
    with pytest.raises(SLOFileError, match=r"sli\.events\.bad: .*not a label matcher"):
        _load(tmp_path, data)


@pytest.mark.parametrize("field", ["objective", "sli", "causes", "panels", "title"])
def test_missing_slo_field_is_refused_naming_it(tmp_path: Path, field: str) -> None:
    data = _orders()
    del data["slos"][0][field]
    with pytest.raises(SLOFileError, match=rf"slos\.0\.{field}: Field required"):
        _load(tmp_path, data)


def test_missing_runbook_facts_are_refused(tmp_path: Path) -> None:
    data = _orders()
    del data["runbook"]["release"]
    with pytest.raises(SLOFileError, match=r"runbook\.release: Field required"):
        _load(tmp_path, data)


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][0]["objectve"] = 99
    with pytest.raises(SLOFileError, match=r"slos\.0\.objectve: Extra inputs are not permitted"):
        _load(tmp_path, data)


def test_duplicate_slo_names_are_refused(tmp_path: Path) -> None:
    data = _orders()
    data["slos"][1]["name"] = data["slos"][0]["name"]
    with pytest.raises(SLOFileError, match="must be unique"):
        _load(tmp_path, data)


def test_file_named_after_another_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SLOFileError, match="declares service 'orders'"):
        _load(tmp_path, _orders(), name="catalog.yaml")


def test_generate_command_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _orders()
    data["slos"][0]["objective"] = 100
    definitions = tmp_path / DEFINITIONS_DIR
    definitions.mkdir(parents=True)
    (definitions / "orders.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["generate", "--root", str(tmp_path)]) == 2
    assert "invalid SLO definition: orders.yaml: slos.0.objective" in capsys.readouterr().err
    assert not (tmp_path / "deploy").exists()
