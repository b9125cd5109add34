"""The availability of every service behind the gateway counts the calls the gateway could not
get answered, with the outcomes the gateway really records for them."""

from __future__ import annotations

import pytest
from slo_test_support import DEFINITIONS

from fleet_slo.catalog import fleet_metrics
from fleet_slo.definitions import load_all
from fleet_slo.model import EventsSLI, UnansweredCalls
from gateway.routes import upstream_names
from gateway.upstream_calls import OUTCOMES

SERVICES = {service.service: service for service in load_all(DEFINITIONS, fleet_metrics())}
# Outcomes of an attempt that got an answer: `ok`, and `upstream_error` (a 5xx the upstream
# answered, which it counts itself in its own `http_requests_total`).
ANSWERED = {"ok", "upstream_error"}
FRONTED_WITH_AVAILABILITY = [
    name
    for name in upstream_names()
    if name in SERVICES and any(slo.name == "availability" for slo in SERVICES[name].slos)
]


def _unanswered(service: str) -> list[UnansweredCalls]:
    (slo,) = [slo for slo in SERVICES[service].slos if slo.name == "availability"]
    assert isinstance(slo.sli, EventsSLI)
    return slo.sli.unanswered


def test_the_gateway_fronts_services_with_an_availability_slo() -> None:
    assert FRONTED_WITH_AVAILABILITY == ["auth", "catalog", "orders"]


@pytest.mark.parametrize("service", FRONTED_WITH_AVAILABILITY)
def test_availability_counts_every_gateway_call_left_unanswered(service: str) -> None:
    counted = {(u.job, u.metric, tuple(sorted(u.selector))) for u in _unanswered(service)}
    no_answer = "|".join(o for o in OUTCOMES if o not in ANSWERED)
    assert counted == {
        (
            "gateway",
            "gateway_upstream_requests_total",
            tuple(sorted([f'upstream="{service}"', f'outcome=~"{no_answer}"'])),
        ),
        ("gateway", "gateway_circuit_rejected_total", (f'upstream="{service}"',)),
    }


def test_the_outcomes_without_an_answer_are_the_gateway_transport_failures() -> None:
    assert [o for o in OUTCOMES if o not in ANSWERED] == ["unavailable", "timeout", "bad_gateway"]
