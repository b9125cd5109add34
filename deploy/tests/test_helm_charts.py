"""Fleet's Helm charts: they lint, render valid Kubernetes objects in every environment, and the
rendered objects keep the promises the services and the operations rely on.

The charts' dependencies (fleet-lib in each service chart, the services in the umbrella) are
built into a temporary copy of deploy/helm, so nothing generated is committed.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python
import promql_parser
import pytest
import yaml
from deploy_support import (
    KUBERNETES_VERSION,
    ROOT,
    build_charts,
    describe,
    render_chart,
    validate_manifests,
)
from kind_support import KIND_VALUES, layered_values
from network_policy_eval import Endpoint, connection_allowed, egress_allowed, ingress_allowed
from starlette.routing import Match

from auth.service_clients import CALLEES
from chassis.messaging.metrics import EVENTS_CONSUMED
from fleetctl.containers import chart_values
from fleetctl.stack import Stack

HELM = ROOT / "deploy" / "helm"
SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
MIGRATING = ("auth", "catalog", "orders", "worker")
CONSUMERS = ("catalog", "orders", "worker")  # services with an event consumer
NAMESPACE = "fleet"
DATA_NAMESPACE = "fleet-data"  # Postgres, RabbitMQ, Redis (deploy/k8s/base)
KUBE_VERSION = f"v{KUBERNETES_VERSION}.0"
RELEASE = "fleet"
WORKLOAD_KINDS = ("Deployment", "Rollout")
SECRET_KEYS = (
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
    "SMTP_URL",
    "FLEET_ADMIN_PASSWORD",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
)
TMP_DIR = "/tmp"  # noqa: S108 - the path every pod must mount writable, not a file used here
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")

Doc = dict[str, Any]


# --- building and rendering -------------------------------------------------------------------


def for_every_service(values: Mapping[str, Any]) -> dict[str, Any]:
    return {service: copy.deepcopy(dict(values)) for service in SERVICES}


def values_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HELM / "fleet" / name).read_text())
    return loaded


def dev_values() -> dict[str, Any]:
    """A cluster without operators: everything that needs one off, one replica each."""
    values: dict[str, Any] = {
        "global": {"environment": "dev", "imageRegistry": ""},
        **for_every_service(
            {
                "replicaCount": 1,
                "canary": {"enabled": False},
                "serviceMonitor": {"enabled": False},
                "secrets": {"externalSecret": {"enabled": False}},
                "podDisruptionBudget": {"enabled": False},
            }
        ),
    }
    for service in ("gateway", "catalog", "orders"):
        values[service]["autoscaling"] = {"enabled": False}
    for service in MIGRATING:
        values[service]["migrations"] = {"enabled": False}
    values["worker"]["keda"] = {"enabled": False}
    return values


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "staging": values_file("values-staging.yaml"),
    "production": values_file("values-production.yaml"),
    "kind": layered_values(*KIND_VALUES),
    "canary-off": for_every_service({"canary": {"enabled": False}}),
    "dev": dev_values(),
    # What `make up-containers` hands to podman (values-containers.yaml and the local stack's part).
    "containers": chart_values(Stack()),
    # What the Tiltfile renders for a local cluster (the contract with tilt/).
    "tilt": yaml.safe_load((ROOT / "tilt" / "values-dev.yaml").read_text()),
    # The service-mesh alternative to service tokens, with each mesh.
    "mesh-istio": for_every_service({"mesh": {"enabled": True, "provider": "istio"}}),
    "mesh-linkerd": for_every_service({"mesh": {"enabled": True, "provider": "linkerd"}}),
}
MESH_VARIANTS = {"mesh-istio": "istio", "mesh-linkerd": "linkerd"}


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/helm with every chart's dependencies built (services first)."""
    return build_charts(tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def umbrella(charts: Path) -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(charts / "fleet") as chart:
        yield chart


def render(chart: helm_python.Chart, values: Mapping[str, Any] | None = None) -> list[Doc]:
    return render_chart(chart, values, release=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def rendered(umbrella: helm_python.Chart) -> dict[str, list[Doc]]:
    return {name: render(umbrella, values) for name, values in VARIANTS.items()}


@pytest.fixture(scope="module")
def default_docs(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["default"]


# --- finding things in rendered documents -----------------------------------------------------


def of_kind(docs: list[Doc], *kinds: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in kinds]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workload(docs: list[Doc], service: str) -> Doc:
    matches = [d for d in of_kind(docs, *WORKLOAD_KINDS) if d["metadata"]["name"] == service]
    assert len(matches) == 1, f"expected one workload {service}, found {len(matches)}"
    return matches[0]


def pod_templates(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(`Kind/name`, pod template) of every workload and Job."""
    for doc in of_kind(docs, *WORKLOAD_KINDS, "Job"):
        yield describe(doc), doc["spec"]["template"]


def main_container(doc: Doc) -> Doc:
    containers: list[Doc] = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def hook(doc: Doc) -> tuple[set[str], int, set[str]]:
    """(hook events, weight, delete policies) of a Helm hook."""
    annotations = doc["metadata"].get("annotations") or {}
    events = set(annotations.get("helm.sh/hook", "").split(",")) - {""}
    policies = set(annotations.get("helm.sh/hook-delete-policy", "").split(",")) - {""}
    return events, int(annotations.get("helm.sh/hook-weight", "0")), policies


# --- lint, schema, validity -------------------------------------------------------------------


@pytest.mark.parametrize("chart", [*SERVICES, "fleet"])
def test_every_chart_passes_strict_lint(charts: Path, chart: str) -> None:
    report = helm_python.lint(
        charts / chart, strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    assert report["errors"] == []


@pytest.mark.parametrize(
    "values_names",
    [("values-staging.yaml",), ("values-production.yaml",), KIND_VALUES],
    ids=["staging", "production", "kind"],
)
def test_umbrella_passes_strict_lint_with_each_environment_file(
    charts: Path, values_names: tuple[str, ...]
) -> None:
    report = helm_python.lint(
        charts / "fleet",
        layered_values(*values_names),
        strict=True,
        namespace=NAMESPACE,
        kube_version=KUBE_VERSION,
    )
    assert report["errors"] == []


def test_every_rendered_document_is_a_valid_kubernetes_object(
    rendered: dict[str, list[Doc]],
) -> None:
    # One validation run for the distinct documents of every variant (it costs ~2 s a run).
    unique: dict[str, Doc] = {}
    where: dict[str, set[str]] = {}
    for variant, docs in rendered.items():
        for doc in docs:
            unique.setdefault(json.dumps(doc, sort_keys=True), doc)
            where.setdefault(describe(doc), set()).add(variant)
    problems = validate_manifests(list(unique.values()))
    located = [f"{p} (in {sorted(where.get(p.split(':')[0], set()))})" for p in problems]
    assert located == []


def test_validation_catches_broken_documents(default_docs: list[Doc]) -> None:
    rollout = copy.deepcopy(workload(default_docs, "orders"))
    rollout["spec"]["strategy"]["canary"]["stepz"] = []
    service = copy.deepcopy(named(default_docs, "Service", "orders"))
    service["spec"]["ports"][0]["targetPortt"] = "http"
    monitor = copy.deepcopy(named(default_docs, "ServiceMonitor", "orders"))
    monitor["spec"]["endpoints"][0]["interval"] = 30
    problems = validate_manifests([rollout, service, monitor])
    for broken in ("Rollout/orders", "Service/orders", "ServiceMonitor/orders"):
        assert any(problem.startswith(broken) for problem in problems), (broken, problems)


@pytest.mark.parametrize(
    ("chart", "values", "offending"),
    [
        ("orders", {"canary": {"enabeld": False}}, "enabeld"),
        ("fleet", {"catalog": {"replicaCont": 3}}, "replicaCont"),
        ("fleet", {"gatewy": {"replicaCount": 3}}, "gatewy"),
        ("fleet", {"global": {"imageTagg": "abc"}}, "imageTagg"),
        ("fleet", {"worker": {"networkPolicy": {"egress": {"peers": {"smpt": {}}}}}}, "smpt"),
        # Keys a service does not have: no Ingress but the gateway's, no DB egress for it.
        ("fleet", {"auth": {"ingress": {"enabled": True}}}, "ingress"),
        (
            "fleet",
            {"gateway": {"networkPolicy": {"egress": {"peers": {"postgres": {}}}}}},
            "postgres",
        ),
        ("fleet", {"gateway": {"migrations": {"enabled": True}}}, "migrations"),
        ("fleet", {"orders": {"keda": {"enabled": True}}}, "keda"),
        # A mesh the charts do not template; the ingress controller is the gateway's caller only.
        ("fleet", {"orders": {"mesh": {"provider": "consul"}}}, "provider"),
        (
            "fleet",
            {"auth": {"mesh": {"peers": {"ingressController": {"enabled": True}}}}},
            "ingressController",
        ),
    ],
)
def test_an_unknown_value_fails_lint_and_rendering(
    charts: Path, chart: str, values: dict[str, Any], offending: str
) -> None:
    report = helm_python.lint(
        charts / chart, values, strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    assert any(offending in error for error in report["errors"]), report["errors"]
    with (
        helm_python.Chart.load(charts / chart) as loaded,
        pytest.raises(helm_python.HelmValuesError, match=offending),
    ):
        loaded.render(values, name=RELEASE, namespace=NAMESPACE)


@pytest.mark.parametrize(
    "key",
    [
        "DATABASE_URL",
        "AMQP_URL",
        "REDIS_URL",
        "SMTP_URL",
        "FLEET_ADMIN_PASSWORD",
        "PORT",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_BUCKET",
    ],
)
def test_config_refuses_secrets_and_chart_owned_keys(umbrella: helm_python.Chart, key: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=key):
        render(umbrella, {"catalog": {"config": {key: "x"}}})


def test_values_schemas_are_the_generated_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "fleet_values_schemas", HELM / "values_schemas.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    for path, schema in module.schemas().items():
        assert path.read_text() == module.render(schema), (
            f"{path.name} is stale: run deploy/helm/values_schemas.py"
        )


# --- workloads --------------------------------------------------------------------------------


def test_canary_switches_between_rollouts_and_deployments(
    rendered: dict[str, list[Doc]],
) -> None:
    on, off = rendered["default"], rendered["canary-off"]
    assert sorted(d["metadata"]["name"] for d in of_kind(on, "Rollout")) == sorted(SERVICES)
    assert of_kind(on, "Deployment") == []
    assert len(of_kind(on, "AnalysisTemplate")) == len(SERVICES)
    assert sorted(d["metadata"]["name"] for d in of_kind(off, "Deployment")) == sorted(SERVICES)
    assert of_kind(off, "Rollout", "AnalysisTemplate") == []
    for docs, kind in ((on, "Rollout"), (off, "Deployment")):
        for scaler in of_kind(docs, "HorizontalPodAutoscaler", "ScaledObject"):
            assert scaler["spec"]["scaleTargetRef"]["kind"] == kind


def test_a_rollback_to_a_recent_revision_skips_the_canary_steps(default_docs: list[Doc]) -> None:
    for rollout in of_kind(default_docs, "Rollout"):
        window = rollout["spec"]["rollbackWindow"]["revisions"]
        assert 1 <= window < rollout["spec"]["revisionHistoryLimit"], describe(rollout)


@pytest.mark.parametrize("service", SERVICES)
def test_probes_target_the_served_livez_and_readyz_on_the_service_port(
    default_docs: list[Doc], service: str
) -> None:
    settings_class = _settings_class(service)
    settings = settings_class(fleet_env="test")
    app = importlib.import_module(f"{service}.main").build_app(settings)

    def served(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
        return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)

    container = main_container(workload(default_docs, service))
    port = settings_class.model_fields["port"].default
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert named(default_docs, "ConfigMap", service)["data"]["PORT"] == str(port)
    service_port = named(default_docs, "Service", service)["spec"]["ports"][0]
    assert (service_port["port"], service_port["targetPort"]) == (port, "http")
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": {"path": "/livez", "port": "http"},
        "livenessProbe": {"path": "/livez", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    assert served("/livez")
    assert served("/readyz")
    assert not served("/healthz")


def _settings_class(service: str) -> Any:
    """The service's settings class: `gateway.settings.GatewaySettings`, ..."""
    return getattr(importlib.import_module(f"{service}.settings"), f"{service.title()}Settings")


@pytest.mark.parametrize("variant", VARIANTS)
def test_termination_grace_covers_the_prestop_sleep_and_the_drain(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    docs = rendered[variant]
    for service in SERVICES:
        pod = workload(docs, service)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "/bin/sleep"
        grace = float(named(docs, "ConfigMap", service)["data"]["SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > int(command[1]) + grace, service


def test_a_grace_period_too_short_for_the_drain_fails_rendering(
    umbrella: helm_python.Chart,
) -> None:
    # The worker drains in three stages of 10 s after a 5 s preStop sleep: 35 s at least.
    with pytest.raises(helm_python.HelmRenderError, match="terminationGracePeriodSeconds"):
        render(umbrella, {"worker": {"terminationGracePeriodSeconds": 35}})
    with pytest.raises(helm_python.HelmRenderError, match="gateway"):
        render(umbrella, {"gateway": {"config": {"SHUTDOWN_GRACE_SECONDS": "30"}}})


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_runs_restricted(rendered: dict[str, list[Doc]], variant: str) -> None:
    templates = list(pod_templates(rendered[variant]))
    assert templates
    for where, template in templates:
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, where
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, where
        assert pod_context["runAsUser"] == 10001, where
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        tmp_volumes = [v["name"] for v in spec["volumes"] if "emptyDir" in v]
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert {"requests", "limits"} <= set(container["resources"]), where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == TMP_DIR]
            assert [m["name"] for m in tmp] == tmp_volumes, where


def test_pods_spread_over_zones_and_nodes(default_docs: list[Doc]) -> None:
    for service in SERVICES:
        spread = workload(default_docs, service)["spec"]["template"]["spec"][
            "topologySpreadConstraints"
        ]
        assert {c["topologyKey"] for c in spread} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        for constraint in spread:
            assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == service


@pytest.mark.parametrize("variant", ["default", "staging", "production", "kind"])
def test_every_workload_has_a_disruption_budget_and_its_scaler(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    docs = rendered[variant]
    for service in SERVICES:
        pod_labels = workload(docs, service)["spec"]["template"]["metadata"]["labels"]
        budget = named(docs, "PodDisruptionBudget", service)
        assert {"minAvailable", "maxUnavailable"} & set(budget["spec"])
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in of_kind(docs, "HorizontalPodAutoscaler")}
    assert hpas == {"gateway", "catalog", "orders"}
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in of_kind(docs, "ScaledObject")}
    assert scaled == {"worker"}
    for service in hpas | scaled:  # the scaler owns the count
        assert "replicas" not in workload(docs, service)["spec"], service
    assert workload(docs, "auth")["spec"]["replicas"] >= 1  # auth: a fixed count


def test_keda_scales_the_worker_on_its_queue_with_the_broker_url_from_its_secret(
    default_docs: list[Doc],
) -> None:
    scaled = named(default_docs, "ScaledObject", "worker")
    trigger, _commands = scaled["spec"]["triggers"]  # the commands' in test_worker_jobs.py
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == "worker.events"
    assert trigger["metadata"]["mode"] == "QueueLength"
    auth = named(default_docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (secret_ref,) = auth["spec"]["secretTargetRef"]
    env_from = main_container(workload(default_docs, "worker"))["envFrom"]
    assert {"secretRef": {"name": secret_ref["name"]}} in env_from
    assert (secret_ref["parameter"], secret_ref["key"]) == ("host", "AMQP_URL")


def test_the_worker_finds_its_bucket_in_its_config_map_and_its_keys_in_its_secret(
    umbrella: helm_python.Chart, rendered: dict[str, list[Doc]]
) -> None:
    def storage(docs: list[Doc]) -> dict[str, str]:
        data = named(docs, "ConfigMap", "worker")["data"]
        return {key: value for key, value in data.items() if key.startswith("S3_")}

    # Empty URLs: AWS's own endpoint (chassis.settings.WithObjectStorage reads them as unset).
    assert storage(rendered["default"]) == {
        "S3_ENDPOINT_URL": "",
        "S3_PRESIGN_ENDPOINT_URL": "",
        "S3_REGION": "us-east-1",
        "S3_BUCKET": "fleet-exports",
    }
    assert storage(rendered["containers"])["S3_ENDPOINT_URL"] == Stack().s3_url
    in_cluster = {
        "endpointUrl": "http://minio.fleet-data.svc:9000",
        "presignEndpointUrl": "https://files.fleet.example.com",
        "region": "eu-west-1",
        "bucket": "fleet-staging-exports",
    }
    docs = render(umbrella, {"worker": {"objectStorage": in_cluster}})
    assert storage(docs) == {
        "S3_ENDPOINT_URL": "http://minio.fleet-data.svc:9000",
        "S3_PRESIGN_ENDPOINT_URL": "https://files.fleet.example.com",
        "S3_REGION": "eu-west-1",
        "S3_BUCKET": "fleet-staging-exports",
    }
    # The keys are the secret store's, through the worker's Secret.
    env_from = main_container(workload(docs, "worker"))["envFrom"]
    assert {"secretRef": {"name": "worker-env"}} in env_from
    assert not any(key in named(docs, "ConfigMap", "worker")["data"] for key in SECRET_KEYS)
    # Only the worker has a bucket.
    assert all(
        not key.startswith("S3_")
        for service in ("gateway", "auth", "catalog", "orders")
        for key in named(rendered["default"], "ConfigMap", service)["data"]
    )


def test_the_worker_reaches_its_bucket_over_https_without_opening_private_ranges(
    umbrella: helm_python.Chart,
) -> None:
    # Without webhooks, the object storage rule alone lets the worker reach S3.
    docs = render(
        umbrella,
        {"worker": {"networkPolicy": {"egress": {"peers": {"webhooks": {"enabled": False}}}}}},
    )
    endpoints = _endpoints(docs)
    policies = _policies(docs)
    assert connection_allowed(policies, endpoints["worker"], endpoints["internet"], 443)
    assert not connection_allowed(policies, endpoints["worker"], endpoints["private-host"], 443)
    assert not connection_allowed(policies, endpoints["worker"], endpoints["internet"], 80)


def test_a_config_change_rolls_the_pods(
    umbrella: helm_python.Chart, default_docs: list[Doc]
) -> None:
    def checksum(docs: list[Doc], service: str) -> str:
        annotations = workload(docs, service)["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    changed = render(umbrella, {"orders": {"config": {"LOG_LEVEL": "DEBUG"}}})
    assert checksum(changed, "orders") != checksum(default_docs, "orders")
    assert checksum(changed, "catalog") == checksum(default_docs, "catalog")


def test_auth_mounts_its_jwt_signing_keys_read_only(default_docs: list[Doc]) -> None:
    pod = workload(default_docs, "auth")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    keys_dir = next(e["value"] for e in container["env"] if e["name"] == "JWT_KEYS_DIR")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == keys_dir]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "auth-jwt-keys"
    external = named(default_docs, "ExternalSecret", "auth-jwt-keys")
    assert external["spec"]["target"]["name"] == "auth-jwt-keys"


def test_each_environment_reads_its_own_secret_entries(rendered: dict[str, list[Doc]]) -> None:
    for variant, environment in (
        ("default", "production"),
        ("staging", "staging"),
        ("kind", "staging"),
    ):
        keys = {
            doc["metadata"]["name"]: doc["spec"]["dataFrom"][0]["extract"]["key"]
            for doc in of_kind(rendered[variant], "ExternalSecret")
        }
        expected = {f"{s}-env": f"fleet/{environment}/{s}" for s in SERVICES}
        expected |= {f"{s}-migrations": f"fleet/{environment}/{s}" for s in MIGRATING}
        expected["auth-jwt-keys"] = f"fleet/{environment}/auth/jwt-keys"
        assert keys == expected, variant


# --- images, secrets, environment -------------------------------------------------------------


def images(docs: list[Doc]) -> dict[str, str]:
    return {
        where: container["image"]
        for where, template in pod_templates(docs)
        for container in template["spec"]["containers"]
    }


def test_the_global_image_tag_wins_for_every_image(umbrella: helm_python.Chart) -> None:
    values = {
        "global": {"imageRegistry": "registry.example.com/fleet", "imageTag": "3f2c1ab"},
        "orders": {"image": {"tag": "pinned"}},
    }
    docs = render(umbrella, values)
    found = images(docs)
    assert len(found) == len(SERVICES) + len(MIGRATING)
    for where, image in found.items():
        service = next(s for s in SERVICES if where.split("/")[1].startswith(s))
        assert image == f"registry.example.com/fleet/fleet-{service}:3f2c1ab", where
    for service in SERVICES:
        env = main_container(workload(docs, service))["env"]
        assert {"name": "SERVICE_VERSION", "value": "3f2c1ab"} in env


def test_without_a_global_tag_images_use_their_own_tag_or_the_app_version(
    umbrella: helm_python.Chart,
) -> None:
    docs = render(
        umbrella, {"global": {"imageRegistry": ""}, "orders": {"image": {"tag": "pinned"}}}
    )
    assert main_container(workload(docs, "orders"))["image"] == "fleet-orders:pinned"
    assert main_container(workload(docs, "catalog"))["image"] == "fleet-catalog:0.1.0"


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every entry of a values tree, nested ones included."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield f"{path}.{key}", str(key), value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield f"{path}[{index}]", "", item
            yield from _walk(item, f"{path}[{index}]")


def _secret_looking(text: str) -> bool:
    """A credential itself (not the name of a Secret's key, like `amqpUrlKey: AMQP_URL`)."""
    return (
        bool(CREDENTIALS_IN_URL.search(text))
        or "password=" in text.lower()
        or "PRIVATE KEY-----" in text
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_secret_is_rendered(rendered: dict[str, list[Doc]], variant: str) -> None:
    docs = rendered[variant]
    assert of_kind(docs, "Secret") == []
    for config_map in of_kind(docs, "ConfigMap"):
        for key, value in config_map["data"].items():
            assert key not in SECRET_KEYS, key
            assert not _secret_looking(value), f"{key}={value}"
    for where, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            for variable in container.get("env", []):
                assert variable["name"] not in SECRET_KEYS, where
                assert not _secret_looking(str(variable.get("value", ""))), where


def test_no_values_file_holds_a_secret() -> None:
    files = sorted(HELM.glob("*/values*.yaml"))
    assert {f"{service}/values.yaml" for service in SERVICES} | {
        f"fleet/{name}" for name in ("values.yaml", "values-production.yaml", *KIND_VALUES)
    } <= {str(file.relative_to(HELM)) for file in files}
    for file in files:
        for where, key, value in _walk(yaml.safe_load(file.read_text())):
            assert key not in SECRET_KEYS, f"{file.name}{where}"
            assert not (isinstance(value, str) and _secret_looking(value)), f"{file.name}{where}"


def test_secret_detection_is_not_blind() -> None:
    leaked = {"orders": {"config": {"DATABASE_URL": "x"}}}
    assert [key for _, key, _ in _walk(leaked) if key in SECRET_KEYS] == ["DATABASE_URL"]
    assert _secret_looking("postgresql+asyncpg://fleet_auth:hunter2@db:5432/fleet")
    assert _secret_looking("host=db password=hunter2")
    assert not _secret_looking("http://auth:8001/v1/auth/jwks")


def test_each_environment_allows_its_own_web_origin_and_the_gateway_accepts_it(
    rendered: dict[str, list[Doc]],
) -> None:
    # Parsed as the gateway parses it: a typo in a values file fails here, not in the rollout.
    expected = {
        "default": (),  # the chart alone: no CORS
        "staging": ("https://app.staging.fleet.example.com",),
        "production": ("https://app.fleet.example.com",),
    }
    for variant, origins in expected.items():
        data = named(rendered[variant], "ConfigMap", "gateway")["data"]
        settings = _settings_class("gateway")(cors_allowed_origins=data["CORS_ALLOWED_ORIGINS"])
        assert settings.cors_allowed_origins == origins, variant


def test_the_environment_reaches_every_service(rendered: dict[str, list[Doc]]) -> None:
    expected = {"default": "production", "staging": "staging", "production": "production"}
    expected["kind"] = "staging"  # CI's kind cluster plays staging
    expected["dev"] = "local"  # the services know local|test|staging|production
    for variant, fleet_env in expected.items():
        for config_map in of_kind(rendered[variant], "ConfigMap"):
            assert config_map["data"]["FLEET_ENV"] == fleet_env, (variant, describe(config_map))


def test_dev_values_need_no_operator(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["dev"]
    assert {doc["apiVersion"] for doc in docs} <= {
        "v1",
        "apps/v1",
        "networking.k8s.io/v1",
    }
    for service in SERVICES:
        deployment = workload(docs, service)
        assert deployment["kind"] == "Deployment"
        assert deployment["spec"]["replicas"] == 1
        env_from = main_container(deployment)["envFrom"]
        assert {"secretRef": {"name": f"{service}-env"}} in env_from


def test_kind_values_run_every_service_as_a_short_canary_from_images_loaded_into_the_nodes(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["kind"]
    registry = VARIANTS["kind"]["global"]["imageRegistry"]
    for service in SERVICES:
        rollout = workload(docs, service)
        assert rollout["kind"] == "Rollout", service
        canary = rollout["spec"]["strategy"]["canary"]
        assert "analysis" not in canary, service  # no Prometheus in the kind cluster
        pauses = [step["pause"]["duration"] for step in canary["steps"] if "pause" in step]
        assert pauses, service
        assert all(re.fullmatch(r"\d+s", pause) and int(pause[:-1]) <= 60 for pause in pauses)
    assert of_kind(docs, "AnalysisTemplate") == []
    assert of_kind(docs, "Ingress") == []  # the smoke test goes through a port-forward
    for where, template in pod_templates(docs):
        for container in template["spec"]["containers"]:
            assert container["image"].startswith(f"{registry}/fleet-"), where
            assert container["imagePullPolicy"] == "Never", where
    # Everything that needs an operator stays on, as in staging.
    for kind in ("ExternalSecret", "ServiceMonitor", "ScaledObject", "HorizontalPodAutoscaler"):
        assert of_kind(docs, kind), kind
    assert {d["metadata"]["name"] for d in of_kind(docs, "NetworkPolicy")} >= set(SERVICES)


# --- observability and canary analysis --------------------------------------------------------


def test_service_monitor_job_label_resolves_to_the_service_name(default_docs: list[Doc]) -> None:
    services = of_kind(default_docs, "Service")
    for monitor in of_kind(default_docs, "ServiceMonitor"):
        spec = monitor["spec"]
        selected = [
            s
            for s in services
            if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, describe(monitor)
        service = selected[0]
        assert service["metadata"]["labels"][spec["jobLabel"]] == service["metadata"]["name"]
        assert "rollouts-pod-template-hash" in spec["podTargetLabels"]
        (endpoint,) = spec["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert len(of_kind(default_docs, "ServiceMonitor")) == len(SERVICES)


def _substitute_args(query: str, args: Mapping[str, str]) -> str:
    return re.sub(r"\{\{\s*args\.([\w-]+)\s*\}\}", lambda m: args[m.group(1)], query)


def test_canary_analysis_runs_valid_promql_on_the_canary_pods_only(
    default_docs: list[Doc],
) -> None:
    for service in SERVICES:
        rollout = workload(default_docs, service)
        analysis = rollout["spec"]["strategy"]["canary"]["analysis"]
        (reference,) = analysis["templates"]
        template = named(default_docs, "AnalysisTemplate", reference["templateName"])
        (arg,) = analysis["args"]
        assert arg["valueFrom"] == {"podTemplateHashValue": "Latest"}
        assert [a["name"] for a in template["spec"]["args"]] == [arg["name"]]
        metrics = {m["name"]: m for m in template["spec"]["metrics"]}
        http = {"success-rate", "p95-latency"}
        assert set(metrics) == http | ({"event-handling"} if service in CONSUMERS else set())
        for name, metric in metrics.items():
            assert metric["failureLimit"] >= 0
            query = metric["provider"]["prometheus"]["query"]
            expr = _substitute_args(query, {arg["name"]: "7d9f8c6b5"})
            promql_parser.parse(expr)  # raises on invalid PromQL
            assert f'job="{service}"' in expr
            assert 'rollouts_pod_template_hash="7d9f8c6b5"' in expr
            if name in http:
                assert 'route!~"/livez|/readyz|/metrics"' in expr
        assert 'status!~"5.."' in metrics["success-rate"]["provider"]["prometheus"]["query"]
        latency = metrics["p95-latency"]["provider"]["prometheus"]["query"]
        assert "histogram_quantile(0.95" in latency
        assert "http_request_duration_seconds_bucket" in latency
    with pytest.raises(ValueError, match=r"."):
        promql_parser.parse('sum(rate(http_requests_total{job="orders"}[2m])')


def test_consumers_canaries_are_judged_on_the_events_they_handle_at_the_first_attempt(
    default_docs: list[Doc],
) -> None:
    # The outcomes the chassis consumer counts, and those that mean the handler failed.
    assert "outcome" in EVENTS_CONSUMED._labelnames
    handled, failed = {"processed", "duplicate"}, {"retried", "dead_lettered"}
    source = (ROOT / "chassis/src/chassis/messaging/consumer.py").read_text()
    assert set(re.findall(r'return "([a-z_]+)"', source)) == handled | failed
    for service in CONSUMERS:
        template = named(default_docs, "AnalysisTemplate", f"{service}-canary")
        (metric,) = [m for m in template["spec"]["metrics"] if m["name"] == "event-handling"]
        query = metric["provider"]["prometheus"]["query"]
        assert 'outcome=~"processed|duplicate"' in query
        assert "events_consumed_total" in query
        assert re.search(r"result\[0\] >= 0\.\d+", metric["successCondition"])


def test_canary_steps_shift_weight_with_pauses(default_docs: list[Doc]) -> None:
    for service in SERVICES:
        steps = workload(default_docs, service)["spec"]["strategy"]["canary"]["steps"]
        weights = [s["setWeight"] for s in steps if "setWeight" in s]
        assert weights == sorted(weights)
        assert weights[-1] < 100
        assert any("pause" in s for s in steps)


# --- migrations -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", MIGRATING)
def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(
    default_docs: list[Doc], service: str
) -> None:
    job = named(default_docs, "Job", f"{service}-migrations")
    events, weight, policies = hook(job)
    assert events == {"pre-install", "pre-upgrade"}
    assert policies == {"before-hook-creation", "hook-succeeded"}
    assert job["spec"]["backoffLimit"] >= 0
    assert job["spec"]["activeDeadlineSeconds"] > 0
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [*container["command"], *container["args"]] == ["python", "-m", service, "migrate"]
    assert container["image"] == main_container(workload(default_docs, service))["image"]
    assert pod["restartPolicy"] == "Never"
    # What the Job needs exists before it: hooks of a lower weight, not release resources
    # (those are created only after the pre-install hooks succeed).
    (secret_ref,) = [e["secretRef"]["name"] for e in container["envFrom"]]
    external = [
        d
        for d in of_kind(default_docs, "ExternalSecret")
        if d["spec"]["target"]["name"] == secret_ref
    ]
    assert len(external) == 1
    account = named(default_docs, "ServiceAccount", pod["serviceAccountName"])
    for prerequisite in (external[0], account):
        pre_events, pre_weight, _ = hook(prerequisite)
        assert pre_events == events, describe(prerequisite)
        assert pre_weight < weight, describe(prerequisite)


def test_the_gateway_has_no_migrations(default_docs: list[Doc]) -> None:
    jobs = sorted(d["metadata"]["name"] for d in of_kind(default_docs, "Job"))
    assert jobs == [f"{s}-migrations" for s in sorted(MIGRATING)]


def test_only_the_gateway_is_exposed_over_tls(
    umbrella: helm_python.Chart, default_docs: list[Doc]
) -> None:
    (ingress,) = of_kind(default_docs, "Ingress")
    assert ingress["metadata"]["name"] == "gateway"
    assert ingress["spec"]["ingressClassName"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    assert tls["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gateway", "port": {"name": "http"}}
    plain = render(umbrella, {"gateway": {"ingress": {"certManager": {"clusterIssuer": ""}}}})
    assert "annotations" not in of_kind(plain, "Ingress")[0]["metadata"]


def _routed(ingress: Doc, path: str) -> bool:
    """Whether an Ingress routes `path` (Prefix matching is by whole path elements)."""
    for rule in ingress["spec"]["rules"]:
        for entry in rule["http"]["paths"]:
            assert entry["pathType"] == "Prefix"
            prefix = entry["path"].rstrip("/")
            if path == prefix or path.startswith(f"{prefix}/"):
                return True
    return False


def test_the_ingress_routes_the_public_api_but_not_probes_or_metrics(
    default_docs: list[Doc],
) -> None:
    (ingress,) = of_kind(default_docs, "Ingress")
    for path in ("/v1/products", "/v1/auth/token", "/v1/orders/x", "/v1/bff/home"):
        assert _routed(ingress, path), path
    for path in ("/metrics", "/livez", "/readyz", "/", "/v1x"):
        assert not _routed(ingress, path), path


# --- network policies -------------------------------------------------------------------------


def _namespace(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def _endpoints(docs: list[Doc]) -> dict[str, Endpoint]:
    """The fleet's pods as rendered, and the peers around them."""
    found: dict[str, Endpoint] = {}
    for index, doc in enumerate(of_kind(docs, *WORKLOAD_KINDS, "Job"), start=10):
        template = doc["spec"]["template"]
        ports = {
            port["name"]: port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        found[doc["metadata"]["name"]] = Endpoint(
            name=doc["metadata"]["name"],
            ip=f"10.1.0.{index}",
            namespace=NAMESPACE,
            namespace_labels=_namespace(NAMESPACE),
            labels=template["metadata"]["labels"],
            named_ports=ports,
        )

    def pod(name: str, ip: str, namespace: str, **labels: str) -> Endpoint:
        return Endpoint(name, ip, namespace, _namespace(namespace), labels)

    others = [
        pod("ingress-nginx", "10.2.0.1", "ingress-nginx", **{"app.kubernetes.io/name": "x"}),
        pod("prometheus", "10.2.0.2", "monitoring", **{"app.kubernetes.io/name": "prometheus"}),
        pod("grafana", "10.2.0.3", "monitoring", **{"app.kubernetes.io/name": "grafana"}),
        pod("stray-prometheus", "10.2.0.4", "default", **{"app.kubernetes.io/name": "prometheus"}),
        pod("kube-dns", "10.2.0.5", "kube-system", **{"k8s-app": "kube-dns"}),
        pod("postgres", "10.2.0.6", DATA_NAMESPACE, **{"cnpg.io/cluster": "fleet-db"}),
        pod("rabbitmq", "10.2.0.7", DATA_NAMESPACE, **{"app.kubernetes.io/name": "fleet-rabbitmq"}),
        pod(
            "redis",
            "10.2.0.8",
            DATA_NAMESPACE,
            **{"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "fleet-redis"},
        ),
        # Same labels as the real one, in the services' namespace: not the database.
        pod("fake-postgres", "10.2.0.10", NAMESPACE, **{"cnpg.io/cluster": "fleet-db"}),
        pod("default-pod", "10.2.0.9", "default"),
        # A pod of the services' namespace no policy selects (a debug shell): only the
        # destination's ingress rules stand in its way.
        pod("debug-pod", "10.2.0.11", NAMESPACE, app="debug"),
        Endpoint("smtp-relay", "198.51.100.25"),
        Endpoint("internet", "203.0.113.10"),
        Endpoint("cloud-metadata", "169.254.169.254"),
        Endpoint("private-host", "10.3.0.1"),
    ]
    found |= {endpoint.name: endpoint for endpoint in others}
    return found


def _policies(docs: list[Doc]) -> list[Doc]:
    policies = copy.deepcopy(of_kind(docs, "NetworkPolicy"))
    for policy in policies:
        policy["metadata"]["namespace"] = NAMESPACE  # what `helm install -n fleet` does
    return policies


PORT = dict(zip(SERVICES, range(8000, 8005), strict=True))
ALLOWED = [
    ("ingress-nginx", "gateway", PORT["gateway"]),
    ("gateway", "auth", PORT["auth"]),
    ("gateway", "catalog", PORT["catalog"]),
    ("gateway", "orders", PORT["orders"]),
    ("gateway", "worker", PORT["worker"]),
    ("orders", "catalog", PORT["catalog"]),
    ("catalog", "auth", PORT["auth"]),
    ("orders", "auth", PORT["auth"]),
    ("worker", "auth", PORT["auth"]),
    ("worker", "orders", PORT["orders"]),
    ("worker", "catalog", PORT["catalog"]),
    ("gateway", "redis", 6379),
    ("catalog", "redis", 6379),
    ("catalog", "postgres", 5432),
    ("orders", "rabbitmq", 5672),
    ("auth", "kube-dns", 53),
    ("worker", "smtp-relay", 587),
    ("worker", "internet", 443),
    ("catalog-migrations", "postgres", 5432),
    *[("prometheus", service, port) for service, port in PORT.items()],
]
DENIED = [
    ("orders", "worker", PORT["worker"]),
    ("catalog", "orders", PORT["orders"]),
    ("auth", "catalog", PORT["catalog"]),
    ("ingress-nginx", "catalog", PORT["catalog"]),
    ("default-pod", "gateway", PORT["gateway"]),
    ("debug-pod", "gateway", PORT["gateway"]),
    ("debug-pod", "auth", PORT["auth"]),
    ("debug-pod", "catalog", PORT["catalog"]),
    ("debug-pod", "orders", PORT["orders"]),
    ("debug-pod", "worker", PORT["worker"]),
    ("stray-prometheus", "orders", PORT["orders"]),
    ("grafana", "orders", PORT["orders"]),
    ("gateway", "auth", 5432),
    ("gateway", "postgres", 5432),
    ("catalog", "fake-postgres", 5432),
    ("orders", "redis", 6379),
    ("auth", "smtp-relay", 587),
    ("auth", "internet", 443),
    ("worker", "cloud-metadata", 80),
    ("worker", "private-host", 443),
    ("catalog-migrations", "auth", PORT["auth"]),
    ("gateway", "catalog-migrations", PORT["catalog"]),
]


@pytest.mark.parametrize(("source", "destination", "port"), ALLOWED)
def test_network_policies_allow(
    default_docs: list[Doc], source: str, destination: str, port: int
) -> None:
    endpoints = _endpoints(default_docs)
    protocol = "UDP" if port == 53 else "TCP"
    assert connection_allowed(
        _policies(default_docs), endpoints[source], endpoints[destination], port, protocol
    )


@pytest.mark.parametrize(("source", "destination", "port"), DENIED)
def test_network_policies_deny(
    default_docs: list[Doc], source: str, destination: str, port: int
) -> None:
    endpoints = _endpoints(default_docs)
    assert not connection_allowed(
        _policies(default_docs), endpoints[source], endpoints[destination], port
    )


# Each side on its own: a service's policy admits exactly its callers, and a caller's policy
# lets it reach exactly what it calls (either alone would already block the other cases).
ACCEPTS = {
    "gateway": set(),
    "auth": {"gateway", "catalog", "orders", "worker"},
    "catalog": {"gateway", "orders", "worker"},
    "orders": {"gateway", "worker"},
    "worker": {"gateway"},
}


@pytest.mark.parametrize("destination", SERVICES)
def test_each_service_accepts_exactly_its_callers(
    default_docs: list[Doc], destination: str
) -> None:
    endpoints, policies = _endpoints(default_docs), _policies(default_docs)
    accepted = {
        source
        for source in SERVICES
        if ingress_allowed(policies, endpoints[source], endpoints[destination], PORT[destination])
    }
    assert accepted == ACCEPTS[destination]
    reached = {
        source
        for source in SERVICES
        if egress_allowed(policies, endpoints[source], endpoints[destination], PORT[destination])
    }
    assert reached == ACCEPTS[destination]


def test_a_caller_added_in_the_values_gets_through(umbrella: helm_python.Chart) -> None:
    values = {
        "worker": {"networkPolicy": {"ingress": {"fromServices": ["gateway", "orders"]}}},
        "orders": {"networkPolicy": {"egress": {"toServices": {"worker": PORT["worker"]}}}},
    }
    docs = render(umbrella, values)
    endpoints = _endpoints(docs)
    assert connection_allowed(
        _policies(docs), endpoints["orders"], endpoints["worker"], PORT["worker"]
    )


def test_every_fleet_pod_is_under_a_default_deny_policy(default_docs: list[Doc]) -> None:
    policies = _policies(default_docs)
    endpoints = _endpoints(default_docs)
    for name in [*SERVICES, *(f"{service}-migrations" for service in MIGRATING)]:
        labels = endpoints[name].labels
        covering = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, name
        assert covering[0]["spec"]["policyTypes"] == ["Ingress", "Egress"], name


# --- service mesh (the alternative to service tokens) -----------------------------------------

ISTIO_KINDS = ("PeerAuthentication", "AuthorizationPolicy")
LINKERD_KINDS = ("Server", "AuthorizationPolicy", "MeshTLSAuthentication")
MESH_GROUPS = ("security.istio.io", "policy.linkerd.io")
MESH_MARKS = ("istio.io", "linkerd.io")  # in any label or annotation key of a meshed pod
PROMETHEUS_PRINCIPAL = "cluster.local/ns/monitoring/sa/kube-prometheus-stack-prometheus"
INGRESS_PRINCIPAL = "cluster.local/ns/ingress-nginx/sa/ingress-nginx"


def mesh_callers(docs: list[Doc], service: str) -> set[str]:
    """The Fleet services that must reach `service` on its port: the callers auth issues tokens
    for (its CALLEES table), and for auth itself every client of its token grant and every
    service that reads its JWKS (AUTH_JWKS_URL in its rendered configuration)."""
    callers = {caller for caller, callees in CALLEES.items() if service in callees}
    if service == "auth":
        callers |= set(CALLEES)
        callers |= {
            reader
            for reader in SERVICES
            if "AUTH_JWKS_URL" in named(docs, "ConfigMap", reader)["data"]
        }
    return callers


def mesh_documents(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc["apiVersion"].split("/")[0] in MESH_GROUPS]


def istio_policy(docs: list[Doc], service: str) -> Doc:
    matches = [
        doc
        for doc in of_kind(docs, "AuthorizationPolicy")
        if doc["apiVersion"] == "security.istio.io/v1" and doc["metadata"]["name"] == service
    ]
    assert len(matches) == 1, service
    return matches[0]


def istio_rules(docs: list[Doc], service: str) -> list[tuple[set[str], Doc]]:
    """(principals, operation) of each rule of the service's AuthorizationPolicy."""
    rules: list[tuple[set[str], Doc]] = []
    for rule in istio_policy(docs, service)["spec"].get("rules", []):
        (source,) = rule["from"]
        (target,) = rule["to"]
        rules.append((set(source["source"]["principals"]), target["operation"]))
    return rules


def linkerd_identities(docs: list[Doc], service: str) -> list[Doc]:
    """The identities the AuthorizationPolicy of the service's Server requires."""
    (policy,) = [
        doc
        for doc in of_kind(docs, "AuthorizationPolicy")
        if doc["apiVersion"] == "policy.linkerd.io/v1alpha1"
        and doc["spec"]["targetRef"]
        == {"group": "policy.linkerd.io", "kind": "Server", "name": service}
    ]
    (reference,) = policy["spec"]["requiredAuthenticationRefs"]
    assert reference["group"] == "policy.linkerd.io"
    assert reference["kind"] == "MeshTLSAuthentication"
    identities: list[Doc] = named(docs, "MeshTLSAuthentication", reference["name"])["spec"][
        "identityRefs"
    ]
    return identities


@pytest.mark.parametrize("service", SERVICES)
def test_istio_admits_on_the_service_port_exactly_the_callers_auth_names(
    rendered: dict[str, list[Doc]], service: str
) -> None:
    docs = rendered["mesh-istio"]
    port = str(main_container(workload(docs, service))["ports"][0]["containerPort"])
    fleet_principals = f"cluster.local/ns/{NAMESPACE}/sa/"
    admitted: set[str] = set()
    for principals, operation in istio_rules(docs, service):
        assert operation["ports"] == [port], service
        if principals == {PROMETHEUS_PRINCIPAL}:
            continue
        assert "paths" not in operation, service
        admitted |= {p.removeprefix(fleet_principals) for p in principals}
    assert istio_policy(docs, service)["spec"]["action"] == "ALLOW"
    expected = mesh_callers(docs, service)
    if service == "gateway":
        expected |= {INGRESS_PRINCIPAL}  # the edge: the ingress controller, meshed
    assert admitted == expected


@pytest.mark.parametrize("service", SERVICES)
def test_linkerd_admits_exactly_the_callers_auth_names(
    rendered: dict[str, list[Doc]], service: str
) -> None:
    docs = rendered["mesh-linkerd"]
    server = named(docs, "Server", service)
    assert server["spec"]["port"] == "http"
    assert (
        server["spec"]["podSelector"]["matchLabels"]
        == (workload(docs, service)["spec"]["selector"]["matchLabels"])
    )
    assert server["spec"]["accessPolicy"] == "deny"
    identities = linkerd_identities(docs, service)
    assert {i["kind"] for i in identities} == {"ServiceAccount"}
    local = {i["name"] for i in identities if "namespace" not in i}
    elsewhere = {(i["namespace"], i["name"]) for i in identities if "namespace" in i}
    assert local == mesh_callers(docs, service)
    expected_elsewhere = {("monitoring", "kube-prometheus-stack-prometheus")}
    if service == "gateway":
        expected_elsewhere.add(("ingress-nginx", "ingress-nginx"))
    assert elsewhere == expected_elsewhere


def test_the_mesh_callers_are_the_network_policy_callers(rendered: dict[str, list[Doc]]) -> None:
    # One list of callers per service (networkPolicy.ingress.fromServices) for both layers.
    for service in SERVICES:
        assert mesh_callers(rendered["default"], service) == ACCEPTS[service], service


def test_istio_requires_strict_mtls_and_injects_every_service(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["mesh-istio"]
    for service in SERVICES:
        selector = workload(docs, service)["spec"]["selector"]["matchLabels"]
        peer = named(docs, "PeerAuthentication", service)
        assert peer["spec"] == {"selector": {"matchLabels": selector}, "mtls": {"mode": "STRICT"}}
        assert istio_policy(docs, service)["spec"]["selector"] == {"matchLabels": selector}
        template = workload(docs, service)["spec"]["template"]["metadata"]
        assert template["labels"]["sidecar.istio.io/inject"] == "true"
        assert template["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"] == "true"
        proxy = json.loads(template["annotations"]["proxy.istio.io/config"])
        assert proxy["holdApplicationUntilProxyStarts"] is True
        # The sidecar outlives the app's stop: preStop sleep and every drain stage.
        grace = int(named(docs, "ConfigMap", service)["data"]["SHUTDOWN_GRACE_SECONDS"])
        spec = workload(docs, service)["spec"]["template"]["spec"]
        pre_stop = int(
            main_container(workload(docs, service))["lifecycle"]["preStop"]["exec"]["command"][1]
        )
        drain = int(proxy["terminationDrainDuration"].removesuffix("s"))
        assert drain >= pre_stop + grace, service
        assert drain < spec["terminationGracePeriodSeconds"], service


def test_linkerd_injects_every_service(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["mesh-linkerd"]
    for service in SERVICES:
        annotations = workload(docs, service)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["linkerd.io/inject"] == "enabled"
        spec = workload(docs, service)["spec"]["template"]["spec"]
        wait = int(annotations["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"])
        assert 0 < wait < spec["terminationGracePeriodSeconds"], service


@pytest.mark.parametrize("variant", MESH_VARIANTS)
def test_the_migration_jobs_stay_out_of_the_mesh(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    # A sidecar would keep a Job from completing; the Job talks to Postgres only.
    for service in MIGRATING:
        metadata = named(rendered[variant], "Job", f"{service}-migrations")["spec"]["template"][
            "metadata"
        ]
        marks = {**metadata.get("labels", {}), **metadata.get("annotations", {})}
        injection = {k: v for k, v in marks.items() if k.endswith("/inject")}
        assert injection == (
            {"sidecar.istio.io/inject": "false"}
            if MESH_VARIANTS[variant] == "istio"
            else {"linkerd.io/inject": "disabled"}
        )


@pytest.mark.parametrize("variant", [name for name in VARIANTS if name not in MESH_VARIANTS])
def test_without_a_mesh_nothing_of_one_is_rendered(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    docs = rendered[variant]
    assert mesh_documents(docs) == []
    for where, template in pod_templates(docs):
        metadata = template["metadata"]
        keys = [*metadata.get("labels", {}), *metadata.get("annotations", {})]
        assert [key for key in keys if any(mark in key for mark in MESH_MARKS)] == [], where
    for monitor in of_kind(docs, "ServiceMonitor"):
        assert "tlsConfig" not in monitor["spec"]["endpoints"][0], describe(monitor)


@pytest.mark.parametrize("variant", MESH_VARIANTS)
def test_a_mesh_renders_only_its_own_resources(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    found = {(doc["apiVersion"], doc["kind"]) for doc in mesh_documents(rendered[variant])}
    if MESH_VARIANTS[variant] == "istio":
        assert found == {("security.istio.io/v1", kind) for kind in ISTIO_KINDS}
    else:
        assert {kind for _, kind in found} == set(LINKERD_KINDS)
        assert {version.split("/")[0] for version, _ in found} == {"policy.linkerd.io"}


def test_prometheus_scrapes_through_istio_with_its_mesh_certificates_and_reads_metrics_only(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["mesh-istio"]
    for service in SERVICES:
        (endpoint,) = named(docs, "ServiceMonitor", service)["spec"]["endpoints"]
        assert endpoint["scheme"] == "https"
        assert endpoint["tlsConfig"] == {
            "caFile": "/etc/prom-certs/root-cert.pem",
            "certFile": "/etc/prom-certs/cert-chain.pem",
            "keyFile": "/etc/prom-certs/key.pem",
            "insecureSkipVerify": True,
        }
        (operation,) = [op for p, op in istio_rules(docs, service) if p == {PROMETHEUS_PRINCIPAL}]
        assert operation["methods"] == ["GET"]
        assert operation["paths"] == [endpoint["path"]]
    # Linkerd's proxies upgrade a meshed Prometheus's plain scrape to mTLS by themselves.
    for monitor in of_kind(rendered["mesh-linkerd"], "ServiceMonitor"):
        assert "tlsConfig" not in monitor["spec"]["endpoints"][0]


def test_a_service_without_callers_admits_nobody_through_the_mesh(
    umbrella: helm_python.Chart,
) -> None:
    closed_gateway = {
        "mesh": {
            "enabled": True,
            "peers": {
                "ingressController": {"enabled": False},
                "prometheus": {"enabled": False},
            },
        }
    }
    docs = render(umbrella, {"gateway": closed_gateway})
    assert "rules" not in istio_policy(docs, "gateway")["spec"]  # ALLOW without rules: deny all
    closed_gateway["mesh"]["provider"] = "linkerd"
    docs = render(umbrella, {"gateway": closed_gateway})
    assert named(docs, "Server", "gateway")["spec"]["accessPolicy"] == "deny"
    assert of_kind(docs, "MeshTLSAuthentication") == []


MESH_CONTROL_PLANES = {
    "istio": (
        Endpoint(
            "istiod",
            "10.2.1.1",
            "istio-system",
            {"kubernetes.io/metadata.name": "istio-system"},
            {"app": "istiod"},
        ),
        (15012,),
    ),
    "linkerd": (
        Endpoint(
            "linkerd-destination",
            "10.2.1.2",
            "linkerd",
            {"kubernetes.io/metadata.name": "linkerd"},
            {"linkerd.io/control-plane-ns": "linkerd"},
        ),
        (8080, 8086, 8090),
    ),
}


@pytest.mark.parametrize("variant", MESH_VARIANTS)
def test_meshed_pods_reach_their_control_plane_and_keep_their_paths(
    rendered: dict[str, list[Doc]], variant: str
) -> None:
    docs = rendered[variant]
    endpoints, policies = _endpoints(docs), _policies(docs)
    control_plane, ports = MESH_CONTROL_PLANES[MESH_VARIANTS[variant]]
    for service in SERVICES:
        for port in ports:
            assert connection_allowed(policies, endpoints[service], control_plane, port), service
        # The migration Job is not meshed and keeps its narrow policy.
        if service in MIGRATING:
            job = endpoints[f"{service}-migrations"]
            assert not connection_allowed(policies, job, control_plane, ports[0]), service
    # Sidecars connect to the destination pod's own port: the policies' paths are unchanged.
    for source, destination, port in ALLOWED:
        assert connection_allowed(
            policies,
            endpoints[source],
            endpoints[destination],
            port,
            "UDP" if port == 53 else "TCP",
        ), (source, destination)
    for source, destination, port in DENIED:
        assert not connection_allowed(policies, endpoints[source], endpoints[destination], port), (
            source,
            destination,
        )


def test_without_a_mesh_no_pod_reaches_a_mesh_control_plane(default_docs: list[Doc]) -> None:
    endpoints, policies = _endpoints(default_docs), _policies(default_docs)
    for control_plane, ports in MESH_CONTROL_PLANES.values():
        for service in SERVICES:
            assert not connection_allowed(policies, endpoints[service], control_plane, ports[0])


@pytest.mark.parametrize(
    ("kind", "field", "typo"),
    [
        ("PeerAuthentication", ("spec", "mtls"), "mtsl"),
        ("Server", ("spec", "podSelector"), "podSelecter"),
        ("MeshTLSAuthentication", ("spec", "identityRefs"), "identityRef"),
    ],
)
def test_mesh_resource_validation_catches_a_misspelt_field(
    rendered: dict[str, list[Doc]], kind: str, field: tuple[str, str], typo: str
) -> None:
    variant = "mesh-istio" if kind == "PeerAuthentication" else "mesh-linkerd"
    doc = copy.deepcopy(of_kind(rendered[variant], kind)[0])
    parent, key = doc[field[0]], field[1]
    parent[typo] = parent.pop(key)
    problems = validate_manifests([doc])
    assert any(typo in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("variant", "kind", "path", "value"),
    [
        ("mesh-istio", "PeerAuthentication", ("spec", "mtls", "mode"), "STRICTEST"),
        ("mesh-istio", "AuthorizationPolicy", ("spec", "action"), "PERMIT"),
        ("mesh-linkerd", "Server", ("spec", "proxyProtocol"), "HTTP/3"),
        ("mesh-linkerd", "AuthorizationPolicy", ("spec", "requiredAuthenticationRefs"), "x"),
    ],
)
def test_mesh_resource_validation_catches_a_value_the_crd_refuses(
    rendered: dict[str, list[Doc]], variant: str, kind: str, path: tuple[str, ...], value: str
) -> None:
    doc = copy.deepcopy(of_kind(rendered[variant], kind)[0])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    problems = validate_manifests([doc])
    assert problems
    assert not [problem for problem in problems if "no schema" in problem], problems
