"""The worker chart runs its commands, exports and reconciliation as the code and the alerts
expect: KEDA scales it on its command queue too (one replica owner: no HPA beside it), the job
settings reach its environment from named values (not `config`), with the code's defaults, and
the reconciliation period is the one the ReconciliationStale alert allows 3 of.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from deploy_support import ROOT, build_charts, render_chart, validate_manifests

from worker.settings import WorkerSettings

HELM = ROOT / "deploy" / "helm"
ALERTS = ROOT / "deploy" / "k8s" / "monitoring" / "rules" / "worker-alerts.yaml"
NAMESPACE, RELEASE = "fleet", "fleet"
ENVIRONMENTS = ("values.yaml", "values-staging.yaml", "values-production.yaml")
# Chart value -> the worker setting it becomes.
JOB_SETTINGS = {
    ("commands", "prefetch"): "COMMAND_PREFETCH",
    ("exports", "deadlineSeconds"): "EXPORT_DEADLINE_SECONDS",
    ("exports", "deadlineScanSeconds"): "EXPORT_DEADLINE_SCAN_SECONDS",
    ("reconciliation", "everySeconds"): "RECONCILIATION_EVERY_SECONDS",
    ("reconciliation", "checkSeconds"): "RECONCILIATION_CHECK_SECONDS",
    ("reconciliation", "settleSeconds"): "RECONCILIATION_SETTLE_SECONDS",
}

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def umbrella(tmp_path_factory: pytest.TempPathFactory) -> Iterator[helm_python.Chart]:
    charts: Path = build_charts(tmp_path_factory.mktemp("helm"))
    with helm_python.Chart.load(charts / "fleet") as chart:
        yield chart


def render(chart: helm_python.Chart, worker: Mapping[str, Any] | None = None) -> list[Doc]:
    return render_chart(chart, {"worker": dict(worker or {})}, release=RELEASE, namespace=NAMESPACE)


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def worker_defaults() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HELM / "worker" / "values.yaml").read_text())
    return loaded


# --- KEDA on the command queue ------------------------------------------------------------------


def test_keda_scales_the_worker_on_its_command_queue_beside_its_events(
    umbrella: helm_python.Chart,
) -> None:
    docs = render(umbrella)
    assert validate_manifests(of_kind(docs, "ScaledObject")) == []
    scaled = named(docs, "ScaledObject", "worker")["spec"]
    triggers = {trigger["name"]: trigger for trigger in scaled["triggers"]}
    assert set(triggers) == {"events", "commands"}
    commands = triggers["commands"]
    assert commands["type"] == "rabbitmq"
    assert commands["metadata"] == {
        "protocol": "amqp",
        "mode": "QueueLength",
        "queueName": "worker.commands",
        "value": str(worker_defaults()["commands"]["prefetch"]),
    }
    # The same TriggerAuthentication: AMQP_URL from the Secret the worker reads its own from.
    assert commands["authenticationRef"] == triggers["events"]["authenticationRef"]
    auth = named(docs, "TriggerAuthentication", commands["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "worker-env", "key": "AMQP_URL"}
    ]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 10)


def test_the_command_trigger_turns_off_alone(umbrella: helm_python.Chart) -> None:
    docs = render(umbrella, {"keda": {"commands": {"enabled": False}}})
    (trigger,) = named(docs, "ScaledObject", "worker")["spec"]["triggers"]
    assert trigger["metadata"]["queueName"] == "worker.events"


def test_keda_off_leaves_a_fixed_replica_count_and_no_scaler(umbrella: helm_python.Chart) -> None:
    docs = render(umbrella, {"keda": {"enabled": False}, "canary": {"enabled": False}})
    assert of_kind(docs, "ScaledObject") == []
    assert of_kind(docs, "TriggerAuthentication") == []
    assert named(docs, "Deployment", "worker")["spec"]["replicas"] == 2


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_one_scaler_at_most_owns_each_workload(
    umbrella: helm_python.Chart, environment: str
) -> None:
    values = yaml.safe_load((HELM / "fleet" / environment).read_text()) or {}
    docs = render_chart(umbrella, values, release=RELEASE, namespace=NAMESPACE)
    hpas = [d["spec"]["scaleTargetRef"]["name"] for d in of_kind(docs, "HorizontalPodAutoscaler")]
    scaled = [d["spec"]["scaleTargetRef"]["name"] for d in of_kind(docs, "ScaledObject")]
    assert scaled == ["worker"]
    assert len(set(hpas)) == len(hpas)
    assert not set(hpas) & set(scaled), "an HPA and KEDA's own HPA would fight over replicas"


def test_the_worker_chart_has_no_hpa_to_turn_on_beside_keda(umbrella: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="autoscaling"):
        render(umbrella, {"autoscaling": {"enabled": True}})


def test_a_queue_prefix_must_prefix_the_queues_keda_watches(umbrella: helm_python.Chart) -> None:
    prefixed = {"config": {"AMQP_QUEUE_PREFIX": "blue."}}
    with pytest.raises(helm_python.HelmError, match=r'queue "worker.events" lacks .*"blue\."'):
        render(umbrella, prefixed)
    queues = {"queueName": "blue.worker.events", "commands": {"queueName": "worker.commands"}}
    with pytest.raises(helm_python.HelmError, match=r'queue "worker.commands" lacks'):
        render(umbrella, {**prefixed, "keda": queues})
    queues["commands"] = {"queueName": "blue.worker.commands"}
    docs = render(umbrella, {**prefixed, "keda": queues})
    triggers = named(docs, "ScaledObject", "worker")["spec"]["triggers"]
    assert [t["metadata"]["queueName"] for t in triggers] == [
        "blue.worker.events",
        "blue.worker.commands",
    ]


# --- The job settings ---------------------------------------------------------------------------


def test_the_job_settings_reach_the_worker_config_with_the_codes_defaults(
    umbrella: helm_python.Chart,
) -> None:
    data = named(render(umbrella), "ConfigMap", "worker")["data"]
    defaults = worker_defaults()
    for (block, key), setting in JOB_SETTINGS.items():
        code_default = WorkerSettings.model_fields[setting.lower()].default
        assert float(data[setting]) == float(code_default), setting
        assert data[setting] == str(defaults[block][key]), setting


def test_a_job_setting_changed_in_the_values_reaches_the_config(
    umbrella: helm_python.Chart,
) -> None:
    values = {"exports": {"deadlineSeconds": 900}, "reconciliation": {"everySeconds": 7200}}
    data = named(render(umbrella, values), "ConfigMap", "worker")["data"]
    assert data["EXPORT_DEADLINE_SECONDS"] == "900"
    assert data["RECONCILIATION_EVERY_SECONDS"] == "7200"
    assert data["RECONCILIATION_CHECK_SECONDS"] == "30"


@pytest.mark.parametrize("setting", sorted(JOB_SETTINGS.values()))
def test_config_refuses_the_job_settings_the_chart_owns(
    umbrella: helm_python.Chart, setting: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=setting):
        render(umbrella, {"config": {setting: "1"}})


@pytest.mark.parametrize(
    "values",
    [
        {"reconciliation": {"everySeconds": 0}},
        {"exports": {"deadlineSeconds": "30m"}},
        {"commands": {"prefetch": 0}},
        {"keda": {"commands": {"targetQueueLength": 0}}},
        {"reconciliation": {"every": 60}},
    ],
)
def test_a_malformed_job_setting_is_refused(
    umbrella: helm_python.Chart, values: dict[str, Any]
) -> None:
    with pytest.raises(helm_python.HelmValuesError):
        render(umbrella, values)


# --- The alert's period -------------------------------------------------------------------------


def _stale_alert() -> dict[str, Any]:
    manifest = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    (group,) = manifest["spec"]["groups"]
    (alert,) = [rule for rule in group["rules"] if rule.get("alert") == "ReconciliationStale"]
    assert isinstance(alert, dict)
    return alert


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_reconciliation_stale_allows_3_periods_of_every_environments_schedule(
    umbrella: helm_python.Chart, environment: str
) -> None:
    values = yaml.safe_load((HELM / "fleet" / environment).read_text()) or {}
    docs = render_chart(umbrella, values, release=RELEASE, namespace=NAMESPACE)
    period = int(named(docs, "ConfigMap", "worker")["data"]["RECONCILIATION_EVERY_SECONDS"])
    expression = _stale_alert()["expr"]
    (threshold,) = re.findall(r"> 3 \* (\d+)", expression)
    assert int(threshold) == period
    hours = str(3 * period // 3600)
    remembered = re.findall(r"_timestamp_seconds\{[^}]*\}\[(\d+)h\]", expression)
    assert remembered == [hours], "the completions remembered across restarts span 3 periods"
    assert re.findall(r"offset (\d+)h", expression) == [hours], "a fresh install gets 3 periods"
