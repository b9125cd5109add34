"""What `make up-containers` hands to podman: the charts' own pod specs, changed only where a
cluster provides what podman cannot (Service DNS, the secret store, secret volumes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from fleetctl.containers import (
    SECRET_KEYS,
    Naming,
    PodSpecs,
    _podman_secret,
    base_image,
    chart_values,
    config_map_for_host,
    deployment_for_host,
    image_name,
    job_pod,
    render_pod_specs,
    service_secrets,
)
from fleetctl.stack import SERVICES, Stack

STACK = Stack().with_(database="fleet_pods", smtp_port=12525)
NAMING = Naming("fleet-x-")


@pytest.fixture(scope="module")
def specs() -> PodSpecs:
    return render_pod_specs(STACK, tag="t1")


def _container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec["containers"][0]
    return container


def test_every_service_runs_one_replica_of_its_own_image_on_its_usual_port(
    specs: PodSpecs,
) -> None:
    assert sorted(d["metadata"]["name"] for d in specs.deployments) == sorted(
        s.name for s in SERVICES
    )
    for service in SERVICES:
        deployment = specs.deployment(service.name)
        assert deployment["spec"]["replicas"] == 1
        container = _container(deployment["spec"]["template"]["spec"])
        assert container["image"] == image_name(service.name, "t1")
        assert container["ports"][0]["containerPort"] == STACK.port(service.name)
        config = next(c for c in specs.config_maps if c["metadata"]["name"] == service.name)
        assert config["data"]["PORT"] == str(STACK.port(service.name))


def test_peers_are_addressed_on_the_host_and_credentials_stay_out_of_config_maps(
    specs: PodSpecs,
) -> None:
    gateway = next(c for c in specs.config_maps if c["metadata"]["name"] == "gateway")["data"]
    assert gateway["ORDERS_URL"] == "http://127.0.0.1:8003"
    for config in specs.config_maps:
        assert not SECRET_KEYS & config["data"].keys(), config["metadata"]["name"]
    secrets = service_secrets(STACK)
    assert secrets["orders-env"]["DATABASE_URL"].endswith("@127.0.0.1:5432/fleet_pods")
    assert "DATABASE_URL" not in secrets["gateway-env"]
    assert secrets["gateway-env"]["REDIS_URL"] == STACK.redis_url


def test_each_caller_holds_the_client_secret_auth_holds_for_it_and_its_callees_addresses(
    specs: PodSpecs,
) -> None:
    secrets = service_secrets(STACK)
    for caller in ("gateway", "orders", "worker"):
        assert (
            secrets[f"{caller}-env"]["SERVICE_CLIENT_SECRET"]
            == secrets["auth-env"][f"{caller.upper()}_CLIENT_SECRET"]
        ), caller
    worker = next(c for c in specs.config_maps if c["metadata"]["name"] == "worker")["data"]
    assert worker["AUTH_TOKEN_URL"] == "http://127.0.0.1:8001/v1/auth/token"
    assert (worker["ORDERS_URL"], worker["CATALOG_URL"]) == (
        "http://127.0.0.1:8003",
        "http://127.0.0.1:8002",
    )


def test_cluster_only_objects_are_not_run_and_migrations_come_as_jobs(specs: PodSpecs) -> None:
    assert {"Service", "ServiceAccount"} <= specs.not_run.keys()
    assert not {"Rollout", "HorizontalPodAutoscaler", "ExternalSecret"} & specs.not_run.keys()
    assert sorted(j["metadata"]["name"] for j in specs.jobs) == [
        f"{s.name}-migrations" for s in sorted(SERVICES, key=lambda s: s.name) if s.schema
    ]


def test_a_deployment_keeps_its_pod_spec_but_joins_the_host_network_under_prefixed_names(
    specs: PodSpecs, tmp_path: Path
) -> None:
    original = specs.deployment("auth")
    keys = tmp_path / "keys"
    hosted = deployment_for_host(original, NAMING, {"auth-jwt-keys": keys})
    pod = hosted["spec"]["template"]["spec"]
    assert hosted["metadata"]["name"] == "fleet-x-auth"
    assert pod["hostNetwork"] is True
    container = _container(pod)
    assert [next(iter(s.values()))["name"] for s in container["envFrom"]] == [
        "fleet-x-auth",
        "fleet-x-auth-env",
    ]
    volume = next(v for v in pod["volumes"] if v["name"] == "jwt-keys")
    assert volume == {"name": "jwt-keys", "hostPath": {"path": str(keys), "type": "Directory"}}
    # Everything else is the chart's, untouched.
    before = _container(original["spec"]["template"]["spec"])
    for key in ("args", "securityContext", "env", "resources", "volumeMounts"):
        assert container[key] == before[key]
    # Container ports are the host's here: gone, and the probes name their number.
    assert "ports" not in container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert before[probe]["httpGet"]["port"] == "http"
        assert container[probe]["httpGet"] == {**before[probe]["httpGet"], "port": 8001}
    assert pod["securityContext"] == original["spec"]["template"]["spec"]["securityContext"]
    assert "hostNetwork" not in original["spec"]["template"]["spec"]
    assert config_map_for_host(specs.config_maps[0], NAMING)["metadata"]["name"].startswith(
        "fleet-x-"
    )


def test_a_migration_job_runs_as_a_pod_once_and_its_spec_serves_one_off_commands(
    specs: PodSpecs,
) -> None:
    job = specs.job("orders-migrations")
    pod = job_pod(job, NAMING, {})
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == "fleet-x-orders-migrations"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert _container(pod["spec"])["args"] == ["migrate"]
    seed = job_pod(specs.job("catalog-migrations"), NAMING, {}, name="catalog-seed", args=["seed"])
    assert seed["metadata"]["name"] == "fleet-x-catalog-seed"
    assert _container(seed["spec"])["args"] == ["seed"]
    assert _container(job["spec"]["template"]["spec"])["args"] == ["migrate"]


def test_podman_secrets_hold_base64_values_in_a_json_object() -> None:
    encoded = json.loads(_podman_secret({"AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/"}))
    assert base64.b64decode(encoded["AMQP_URL"]) == b"amqp://guest:guest@127.0.0.1:5672/"


def test_the_base_image_is_the_dockerfiles_one_fully_qualified(tmp_path: Path) -> None:
    assert base_image().startswith("docker.io/library/python:3.11")
    two = tmp_path / "Dockerfile"
    two.write_text("FROM python:3.11 AS a\nFROM debian:bookworm\n")
    with pytest.raises(RuntimeError, match="2 base images"):
        base_image(two)


def test_chart_values_set_the_image_tag_and_leave_the_committed_switches() -> None:
    values = chart_values(STACK, tag="abc")
    assert values["global"]["imageTag"] == "abc"
    assert values["global"]["imageRegistry"] == "localhost"
    assert values["worker"]["config"]["WEBHOOKS_ALLOW_PRIVATE"] == "true"
    assert "SMTP_URL" not in values["worker"]["config"]
    assert values["worker"]["keda"] == {"enabled": False}
    assert "JWT_KEYS_DIR" not in values["auth"]["config"]


def test_settings_a_chart_takes_as_values_of_their_own_reach_the_worker_through_them() -> None:
    stack = STACK.with_(
        extra_env={"RECONCILIATION_SETTLE_SECONDS": "0", "EXPORT_DEADLINE_SECONDS": "600"}
    )

    specs = render_pod_specs(stack, tag="t2")  # the charts' schemas refuse them in `config`
    values = chart_values(stack, tag="t2")

    assert values["worker"]["reconciliation"]["settleSeconds"] == 0
    assert values["worker"]["exports"]["deadlineSeconds"] == 600
    for service in SERVICES:
        assert "RECONCILIATION_SETTLE_SECONDS" not in values[service.name]["config"]
    worker = next(c for c in specs.config_maps if c["metadata"]["name"] == "worker")
    assert worker["data"]["RECONCILIATION_SETTLE_SECONDS"] == "0"
    assert worker["data"]["EXPORT_DEADLINE_SECONDS"] == "600"
