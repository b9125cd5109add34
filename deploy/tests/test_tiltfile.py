"""tilt/Tiltfile: what `tilt up -f tilt/Tiltfile` would build, sync, deploy and wait for.

The Tiltfile is evaluated by starlark-pyo3 against a stand-in of Tilt's API (tiltfile_stub.py:
Tilt's parameter names, a call Tilt would refuse fails) that records the calls; its helm() renders
the real umbrella chart with tilt/values-dev.yaml. The tests then hold the recorded plan against
the repository: the Dockerfiles say where the code is installed, the chart says which workloads
exist, the services' settings say which secrets they read. Nothing is built or deployed; the two
tests that run something real are the database bootstrap (psql against the local Postgres) and
the signing-key script (real openssl, a recording kubectl).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest
import starlark
import yaml
from deploy_support import (
    DOCKERFILE,
    ROOT,
    build_charts,
    copied_beside_the_package,
    describe,
    hadolint,
    image_build_args,
    load_documents,
    parse_dockerfile,
    service_stages,
    validate_manifests,
)
from tiltfile_stub import (
    Assembly,
    ImageBuild,
    Run,
    Sync,
    TiltfileError,
    TiltfileRun,
    TiltStub,
    image_name,
    pod_spec,
)

from auth.keyfiles import KID_PATTERN
from auth.keyring import KeyRing
from auth.settings import AuthSettings
from catalog.settings import CatalogSettings
from chassis.settings import ServiceSettings
from fleetctl.stack import Stack
from gateway.settings import GatewaySettings
from orders.settings import OrdersSettings
from worker.settings import WorkerSettings

TILT = ROOT / "tilt"
TILTFILE = TILT / "Tiltfile"
DEV_VALUES = TILT / "values-dev.yaml"
INFRA = TILT / "infra"
HELM = ROOT / "deploy" / "helm"
UMBRELLA = HELM / "fleet"
NAMESPACE = "fleet"
SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
PORTS = {"gateway": 8000, "auth": 8001, "catalog": 8002, "orders": 8003, "worker": 8004}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "orders": OrdersSettings,
    "worker": WorkerSettings,
}
# The secret variables of each service (README, "Service configuration"): its `<svc>-env`.
SECRET_ENV = {
    "gateway": {"REDIS_URL"},
    "auth": {"DATABASE_URL", "AMQP_URL", "FLEET_ADMIN_PASSWORD"},
    "catalog": {"DATABASE_URL", "AMQP_URL", "REDIS_URL"},
    "orders": {"DATABASE_URL", "AMQP_URL"},
    "worker": {"DATABASE_URL", "AMQP_URL", "SMTP_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"},
}
# Which infrastructure resource serves a URL scheme (the one the service must wait for).
SCHEME_RESOURCE = {
    "postgresql+asyncpg": "db-bootstrap",
    "amqp": "rabbitmq",
    "redis": "redis",
    "smtp": "mailpit",
}
INFRA_RESOURCES = {
    "fleet-namespace",
    "dev-secrets",
    "postgres",
    "rabbitmq",
    "redis",
    "mailpit",
    "db-bootstrap",
    "auth-jwt-keys",
}
EXACT_VERSION_TAG = re.compile(r":v?\d+\.\d+\.\d+[^:/@]*$")
# Postgres numbers its releases MAJOR.MINOR: 16.4 is one exact release.
EXACT_POSTGRES_TAG = re.compile(r"^postgres:\d+\.\d+-[a-z0-9.]+$")

Doc = dict[str, Any]


# --- Dockerfiles: where each image installs the code ------------------------------------------


def wheel_package(project: Path) -> str:
    """The import package a project's wheel installs (hatch `packages = ["src/<pkg>"]`)."""
    match = re.search(
        r'packages\s*=\s*\["src/([a-z_]+)"\]', (project / "pyproject.toml").read_text()
    )
    assert match, f"{project}: no wheel package"
    return match.group(1)


def installed_sources(service: str) -> dict[Path, str]:
    """Source directory -> where services/Dockerfile's runtime stage, built for the service,
    installs it."""
    stages = service_stages(service)
    runtime = stages[-1]
    version = re.match(r"python:(\d+\.\d+)\.\d+", runtime.image)
    assert version, f"{service}: runtime base {runtime.image} is not an exact python image"
    site_packages = f"/usr/local/lib/python{version.group(1)}/site-packages"
    installed: dict[Path, str] = {}
    workdir = PurePosixPath("/")
    for keyword, arguments in runtime.instructions:
        if keyword == "WORKDIR":
            workdir = workdir / arguments
        for command in arguments.split("&&") if keyword == "RUN" else []:
            words = shlex.split(command)
            if "pip" not in words or "install" not in words:
                continue
            if "--target" in words:  # the service's own wheel
                target = words[words.index("--target") + 1]
                package = wheel_package(ROOT / "services" / service)
                installed[ROOT / "services" / service / "src" / package] = f"{target}/{package}"
            else:  # the dependencies' wheels, the local libraries among them
                for library in ("chassis", "contracts"):
                    package = wheel_package(ROOT / library)
                    installed[ROOT / library / "src" / package] = f"{site_packages}/{package}"
        if keyword == "COPY" and "--from" not in arguments:
            source, destination = arguments.split()
            installed[ROOT / source.rstrip("/")] = str(workdir / destination.rstrip("/"))
    for source, beside in copied_beside_the_package(stages).items():
        installed[ROOT / source] = str(beside)
    # alembic.ini is one file: a change to it rebuilds the image.
    return {src: dst for src, dst in installed.items() if src.is_dir()}


def runtime_user(service: str) -> str:
    runtime = service_stages(service)[-1]
    users = [arguments for keyword, arguments in runtime.instructions if keyword == "USER"]
    return users[-1]


def copied_paths(service: str) -> set[str]:
    """Every context path the Dockerfile copies (the build fails if the context lacks one)."""
    copied: set[str] = set()
    for stage in service_stages(service):
        for keyword, arguments in stage.instructions:
            if keyword == "COPY" and "--from" not in arguments:
                copied.update(word.rstrip("/") for word in arguments.split()[:-1])
    return copied


def sync_problems(image: ImageBuild, service: str) -> list[str]:
    """How the image's live update misses where the Dockerfile installs the code."""
    expected = installed_sources(service)
    actual = {Path(step.local_path): step.remote_path for step in image.syncs()}
    problems = [
        f"{source.relative_to(ROOT)} is installed at {target} but synced to "
        f"{actual.get(source, 'nowhere')}"
        for source, target in expected.items()
        if actual.get(source) != target
    ]
    problems += [
        f"{source} is synced but not installed by the Dockerfile"
        for source in actual
        if source not in expected
    ]
    return problems


# --- evaluating the Tiltfile ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/helm with the dependencies built, as the Tiltfile's `helm dependency
    update` calls leave them (nothing generated lands in the repository)."""
    return build_charts(tmp_path_factory.mktemp("helm"))


def evaluate(
    built_charts: Path, *, args: tuple[str, ...] = (), source: str | None = None
) -> TiltfileRun:
    stub = TiltStub(TILTFILE, args=args, built_charts={UMBRELLA: built_charts / "fleet"})
    return stub.evaluate(source)


@pytest.fixture(scope="module")
def tilt(built_charts: Path) -> TiltfileRun:
    return evaluate(built_charts)


@pytest.fixture(scope="module")
def assembly(tilt: TiltfileRun) -> Assembly:
    return tilt.assemble()


@pytest.fixture(scope="module")
def infra_docs() -> list[Doc]:
    return [
        doc for path in sorted(INFRA.glob("*.yaml")) for doc in load_documents(path.read_text())
    ]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def secret_data(docs: list[Doc], name: str) -> dict[str, str]:
    return dict(find(docs, "Secret", name)["stringData"])


def deployment(tilt: TiltfileRun, service: str) -> Doc:
    return find([o.doc for o in tilt.objects], "Deployment", service)


def dependency_closure(tilt: TiltfileRun, name: str) -> set[str]:
    deps = {r.name: r.resource_deps for r in tilt.k8s_resources.values()}
    deps |= {r.name: r.resource_deps for r in tilt.local_resources.values()}
    seen: set[str] = set()
    todo = list(deps.get(name, []))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(deps.get(current, []))
    return seen


# --- images and live update -------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_image_is_the_production_dockerfile_plus_a_development_stage(
    tilt: TiltfileRun, service: str
) -> None:
    restarting = tilt.restarting[f"fleet-{service}"]
    base = tilt.images[restarting.base_ref]
    assert base.context == str(ROOT)
    assert str(DOCKERFILE) in tilt.read_files
    # Built as CI builds it: the service and its port (which the image exposes).
    assert base.build_args == image_build_args(service)
    production = DOCKERFILE.read_text()
    assert base.dockerfile_contents.startswith(production), "the production stages are rewritten"
    production_stages = parse_dockerfile(production)
    dev_stage = parse_dockerfile(base.dockerfile_contents)[-1]
    assert len(parse_dockerfile(base.dockerfile_contents)) == len(production_stages) + 1
    assert dev_stage.image == production_stages[-1].name, "the dev stage must build on runtime"
    users = [args for keyword, args in dev_stage.instructions if keyword == "USER"]
    assert users[-1] == runtime_user(service), "the dev stage must end as the runtime user"
    # The deployed image adds the restart wrapper on top of that base.
    assert f"FROM {restarting.base_ref}" in tilt.images[f"fleet-{service}"].dockerfile_contents


@pytest.mark.parametrize("service", SERVICES)
def test_build_context_holds_everything_the_dockerfile_copies(
    tilt: TiltfileRun, service: str
) -> None:
    image = tilt.images[tilt.restarting[f"fleet-{service}"].base_ref]
    only = {path.rstrip("/") for path in image.only}
    missing = [
        path
        for path in copied_paths(service)
        if not any(path == o or path.startswith(f"{o}/") for o in only)
    ]
    assert not missing, f"the context (`only`) lacks {missing}"
    assert all((ROOT / path).exists() for path in only)
    assert "**/tests" in image.ignore


@pytest.mark.parametrize("service", SERVICES)
def test_live_update_syncs_each_package_onto_its_installed_copy(
    tilt: TiltfileRun, service: str
) -> None:
    image = tilt.images[f"fleet-{service}"]
    assert sync_problems(image, service) == []
    assert all(Path(step.local_path).is_dir() for step in image.syncs())
    # chassis, contracts and the service itself, at least.
    assert len(image.syncs()) >= 3


def test_a_sync_target_off_the_installed_location_is_reported(built_charts: Path) -> None:
    broken = TILTFILE.read_text().replace(
        "/usr/local/lib/python3.11/", "/usr/local/lib/python3.12/"
    )
    image = evaluate(built_charts, source=broken).images["fleet-orders"]
    problems = sync_problems(image, "orders")
    assert any("chassis" in p and "python3.12" in p for p in problems)


@pytest.mark.parametrize("service", SERVICES)
def test_synced_directories_belong_to_the_user_the_container_runs_as(
    tilt: TiltfileRun, service: str
) -> None:
    base = tilt.images[tilt.restarting[f"fleet-{service}"].base_ref]
    dev_stage = parse_dockerfile(base.dockerfile_contents)[-1]
    chowned: set[str] = set()
    for keyword, arguments in dev_stage.instructions:
        for command in arguments.split("&&") if keyword == "RUN" else []:
            words = shlex.split(command)
            if words[:2] == ["chown", "-R"]:
                assert words[2] == runtime_user(service)
                chowned.update(words[3:])
    targets = {step.remote_path for step in tilt.images[f"fleet-{service}"].syncs()}
    restart_dir = str(PurePosixPath(tilt.restarting[f"fleet-{service}"].restart_file).parent)
    assert targets | {restart_dir} <= chowned


@pytest.mark.parametrize("service", SERVICES)
def test_live_update_restarts_the_service_in_place_after_syncing(
    tilt: TiltfileRun, service: str
) -> None:
    restarting = tilt.restarting[f"fleet-{service}"]
    image = tilt.images[f"fleet-{service}"]
    last = image.live_update[-1]
    assert isinstance(last, Run)
    assert last.cmd == f"date > {restarting.restart_file}"
    assert isinstance(image.live_update[0], Sync)
    assert image.entrypoint[:2] == [
        "/tilt-restart-wrapper",
        f"--watch_file={restarting.restart_file}",
    ]
    command = str(restarting.entrypoint)
    assert command.endswith(f"exec python -m {service} serve")
    if (ROOT / "services" / service / "alembic").is_dir():
        assert command.startswith(f"python -m {service} migrate && ")


@pytest.mark.parametrize("service", SERVICES)
def test_restart_file_is_not_hidden_by_a_volume(tilt: TiltfileRun, service: str) -> None:
    restart_file = PurePosixPath(tilt.restarting[f"fleet-{service}"].restart_file)
    (container,) = pod_spec(deployment(tilt, service))["containers"]
    mounts = [PurePosixPath(m["mountPath"]) for m in container.get("volumeMounts", [])]
    assert not [m for m in mounts if restart_file.is_relative_to(m)]


def test_development_dockerfiles_pass_hadolint(tilt: TiltfileRun, tmp_path: Path) -> None:
    for service in SERVICES:
        path = tmp_path / f"{service}.Dockerfile"
        path.write_text(
            tilt.images[tilt.restarting[f"fleet-{service}"].base_ref].dockerfile_contents
        )
        result = subprocess.run(
            [hadolint(), "--failure-threshold", "warning", "--no-color", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- the chart --------------------------------------------------------------------------------


def test_helm_renders_the_umbrella_chart_with_the_dev_values(tilt: TiltfileRun) -> None:
    (call,) = tilt.helm_calls
    assert Path(call.chart) == UMBRELLA
    assert (UMBRELLA / "Chart.yaml").is_file()
    assert (call.name, call.namespace) == ("fleet", NAMESPACE)
    assert [Path(v) for v in call.values] == [DEV_VALUES]
    assert str(DEV_VALUES) in tilt.watched


def test_chart_dependencies_are_built_before_rendering_and_not_watched(tilt: TiltfileRun) -> None:
    built = [
        Path(command[-1])
        for command in tilt.local_commands
        if isinstance(command, list) and command[:3] == ["helm", "dependency", "update"]
    ]
    assert built == [HELM / service for service in SERVICES] + [UMBRELLA]
    ignored = set(tilt.watch_ignores)
    assert str(HELM / "*" / "charts") in ignored
    assert str(HELM / "*" / "Chart.lock") in ignored
    assert str(HELM) in tilt.watched


def test_dev_values_lint_against_the_charts_schemas(built_charts: Path) -> None:
    values = yaml.safe_load(DEV_VALUES.read_text())
    report = helm_python.lint(built_charts / "fleet", values, strict=True, with_subcharts=True)
    assert report["errors"] == []


def test_a_misspelt_dev_value_fails_lint(built_charts: Path) -> None:
    values = yaml.safe_load(DEV_VALUES.read_text())
    values["orders"]["replicaCounts"] = values["orders"].pop("replicaCount")
    report = helm_python.lint(built_charts / "fleet", values, strict=True, with_subcharts=True)
    assert report["errors"], "a misspelt key must fail the schema"


def test_dev_values_switch_off_what_a_dev_cluster_lacks() -> None:
    values = yaml.safe_load(DEV_VALUES.read_text())
    assert values["global"] == {"imageRegistry": "", "imageTag": "", "environment": "dev"}
    for service in SERVICES:
        mine = values[service]
        assert mine["replicaCount"] == 1
        assert mine["secrets"] == {
            "externalSecret": {"enabled": False},
            "existingSecret": f"{service}-env",
        }
        for switch in ("canary", "serviceMonitor", "networkPolicy", "podDisruptionBudget"):
            assert mine[switch] == {"enabled": False}, f"{service}.{switch}"
        scaler = "keda" if service == "worker" else "autoscaling"
        if service != "auth":
            assert mine[scaler] == {"enabled": False}
        if service != "gateway":
            assert mine["migrations"] == {"enabled": False}


# --- resources --------------------------------------------------------------------------------


def test_every_k8s_resource_names_a_workload_the_manifests_render(
    tilt: TiltfileRun, assembly: Assembly
) -> None:
    workloads = set(tilt.workload_names())
    configured = {r.workload for r in tilt.k8s_resources.values() if r.workload}
    assert (
        configured
        == workloads
        == {*SERVICES, "postgres", "rabbitmq", "redis", "mailpit", "db-bootstrap"}
    )
    assert [describe(o.doc) for o in assembly.uncategorized] == [], (
        "uncategorized objects are applied without waiting for the namespace"
    )


def test_a_resource_for_a_missing_workload_fails(built_charts: Path) -> None:
    broken = TILTFILE.read_text().replace("    'mailpit',\n", "    'mail-pit',\n", 1)
    tilt = evaluate(built_charts, source=broken)
    with pytest.raises(TiltfileError, match="no workload named 'mail-pit'"):
        tilt.assemble()


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_as_one_deployment_of_the_image_tilt_builds(
    tilt: TiltfileRun, assembly: Assembly, service: str
) -> None:
    workloads = [o for o in assembly.resources[service] if o.kind in ("Deployment", "Rollout")]
    assert [o.kind for o in workloads] == ["Deployment"]
    (container,) = pod_spec(workloads[0].doc)["containers"]
    assert image_name(container["image"]) == f"fleet-{service}"
    assert workloads[0].doc["spec"]["replicas"] == 1


def test_no_other_workload_runs_a_service_image(tilt: TiltfileRun) -> None:
    """Tilt gives every container of a built image the restart wrapper as its command: a Job
    running `migrate` with one of these images would serve forever instead."""
    users = [
        f"{o.kind}/{o.name}"
        for o in tilt.workloads()
        for c in pod_spec(o.doc).get("containers", []) + pod_spec(o.doc).get("initContainers", [])
        if image_name(c["image"]).startswith("fleet-")
    ]
    assert sorted(users) == sorted(f"Deployment/{s}" for s in SERVICES)
    assert not [
        o for o in tilt.objects if "helm.sh/hook" in (o.doc["metadata"].get("annotations") or {})
    ]
    assert tilt.warnings == []


@pytest.mark.parametrize("service", SERVICES)
def test_service_root_filesystem_is_writable_for_live_update_and_still_non_root(
    tilt: TiltfileRun, service: str
) -> None:
    spec = pod_spec(deployment(tilt, service))
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    uid = runtime_user(service).split(":")[0]
    assert str(spec["securityContext"]["runAsUser"]) == uid
    assert container["securityContext"]["runAsNonRoot"] is True


def test_gateway_is_forwarded_to_localhost_8000(tilt: TiltfileRun) -> None:
    forwards = tilt.k8s_resources["gateway"].port_forwards
    assert [(f.local_port, f.container_port) for f in forwards] == [(8000, 8000)]
    (container,) = pod_spec(deployment(tilt, "gateway"))["containers"]
    assert 8000 in [p["containerPort"] for p in container["ports"]]


def test_port_forwards_reach_exposed_ports_and_never_collide(tilt: TiltfileRun) -> None:
    local_ports: list[int] = []
    for resource in tilt.k8s_resources.values():
        if not resource.workload:
            continue
        workload = tilt.workload_names()[resource.workload]
        exposed = {
            port["containerPort"]
            for container in pod_spec(workload.doc)["containers"]
            for port in container.get("ports", [])
        }
        for forward in resource.port_forwards:
            assert forward.container_port in exposed, f"{resource.name}: {forward}"
            local_ports.append(forward.local_port)
    assert len(local_ports) == len(set(local_ports))
    for service, port in PORTS.items():
        assert [f.local_port for f in tilt.k8s_resources[service].port_forwards] == [port]


@pytest.mark.parametrize("service", SERVICES)
def test_service_waits_for_the_infrastructure_its_secrets_point_at(
    tilt: TiltfileRun, infra_docs: list[Doc], service: str
) -> None:
    needed = {
        SCHEME_RESOURCE[urlsplit(value).scheme]
        for key, value in secret_data(infra_docs, f"{service}-env").items()
        if key.endswith("_URL")
    }
    deps = dependency_closure(tilt, service)
    assert needed <= deps
    assert {"fleet-namespace", "dev-secrets", "postgres"} & deps >= {
        "fleet-namespace",
        "dev-secrets",
    }
    if service == "auth":
        assert "auth-jwt-keys" in deps


def test_everything_waits_for_the_namespace_and_nothing_waits_in_a_cycle(tilt: TiltfileRun) -> None:
    names = {r.name for r in tilt.k8s_resources.values()} | set(tilt.local_resources)
    for name in names - {"fleet-namespace"}:
        closure = dependency_closure(tilt, name)
        assert "fleet-namespace" in closure, name
        assert name not in closure, f"{name} depends on itself"


def test_every_resource_has_a_label(tilt: TiltfileRun) -> None:
    labels = {r.name: r.labels for r in tilt.k8s_resources.values()}
    labels |= {r.name: r.labels for r in tilt.local_resources.values()}
    assert all(labels.values()), [name for name, value in labels.items() if not value]
    assert labels["gateway"] == ["edge"]
    for service in set(SERVICES) - {"gateway"}:
        assert labels[service] == ["services"]
    for name in INFRA_RESOURCES:
        assert labels[name] == ["infra"]


def test_all_services_and_the_infrastructure_run_by_default(tilt: TiltfileRun) -> None:
    assert set(tilt.enabled_resources or []) == INFRA_RESOURCES | set(SERVICES) | {"seed"}
    assert tilt.config_settings["services"] == ("string_list", True)


def test_choosing_services_runs_only_those_and_the_infrastructure(built_charts: Path) -> None:
    tilt = evaluate(built_charts, args=("catalog", "orders"))
    assert set(tilt.enabled_resources or []) == INFRA_RESOURCES | {"catalog", "orders", "seed"}
    assert tilt.local_resources["seed"].resource_deps == ["catalog"]
    with pytest.raises(starlark.StarlarkError, match="unknown service"):
        evaluate(built_charts, args=("ordrs",))


def test_seed_runs_the_services_own_seed_commands_in_their_pods(tilt: TiltfileRun) -> None:
    seed = tilt.local_resources["seed"]
    assert seed.resource_deps == ["auth", "catalog"]
    commands = [shlex.split(part) for part in str(seed.cmd).split("&&")]
    for (service, action), command in zip(
        [("auth", "seed-admin"), ("catalog", "seed")], commands, strict=True
    ):
        assert command[:3] == ["kubectl", "--context", "kind-fleet"]
        assert command[-6:] == [f"deploy/{service}", "--", "python", "-m", service, action]


# --- a broken Tiltfile fails ------------------------------------------------------------------


def test_a_misspelt_keyword_argument_fails_the_tiltfile(built_charts: Path) -> None:
    broken = TILTFILE.read_text().replace(
        "resource_deps=['dev-secrets'] + NEEDS[svc]", "resource_dep=['dev-secrets'] + NEEDS[svc]"
    )
    assert broken != TILTFILE.read_text()
    with pytest.raises(starlark.StarlarkError, match="unexpected keyword argument 'resource_dep'"):
        evaluate(built_charts, source=broken)


def test_a_misspelt_builtin_fails_the_tiltfile(built_charts: Path) -> None:
    broken = TILTFILE.read_text().replace(
        "port_forwards=[port_forward(", "port_forwards=[portforward("
    )
    with pytest.raises(starlark.StarlarkError, match="portforward"):
        evaluate(built_charts, source=broken)


def test_a_misspelt_extension_argument_fails_the_tiltfile(built_charts: Path) -> None:
    broken = TILTFILE.read_text().replace("restart_file=RESTART_FILE", "restartfile=RESTART_FILE")
    with pytest.raises(starlark.StarlarkError, match="restartfile"):
        evaluate(built_charts, source=broken)


# --- manifests and secrets --------------------------------------------------------------------


def test_infra_manifests_are_valid_kubernetes_objects(infra_docs: list[Doc]) -> None:
    assert validate_manifests(infra_docs) == []
    assert {d["metadata"].get("namespace") for d in infra_docs if d["kind"] != "Namespace"} == {
        NAMESPACE
    }


def test_a_broken_infra_manifest_fails_validation(infra_docs: list[Doc]) -> None:
    job = dict(find(infra_docs, "Job", "db-bootstrap"))
    job["spec"] = {**job["spec"], "backofLimit": 3}
    assert validate_manifests([job])


def test_the_objects_tilt_applies_are_valid_kubernetes_objects(tilt: TiltfileRun) -> None:
    assert validate_manifests([o.doc for o in tilt.objects]) == []
    assert {o.namespace for o in tilt.objects if o.kind != "Namespace"} == {NAMESPACE}


def test_infra_images_are_pinned_to_exact_versions(infra_docs: list[Doc]) -> None:
    images = [
        container["image"]
        for doc in infra_docs
        if doc["kind"] in ("Deployment", "Job")
        for container in pod_spec(doc)["containers"]
    ]
    assert images
    floating = [
        image
        for image in images
        if not (EXACT_VERSION_TAG.search(image) or EXACT_POSTGRES_TAG.match(image))
    ]
    assert floating == []


def test_dev_secrets_are_marked_development_only(infra_docs: list[Doc]) -> None:
    secrets = [d for d in infra_docs if d["kind"] == "Secret"]
    assert {d["metadata"]["name"] for d in secrets} >= {f"{s}-env" for s in SERVICES}
    for secret in secrets:
        assert secret["metadata"]["annotations"]["fleet/dev-only"] == "true", describe(secret)
    assert "DEVELOPMENT-ONLY" in (INFRA / "secrets.yaml").read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_service_secret_holds_exactly_what_the_service_reads(
    infra_docs: list[Doc], service: str
) -> None:
    assert set(secret_data(infra_docs, f"{service}-env")) == SECRET_ENV[service]


@pytest.mark.parametrize("service", SERVICES)
def test_service_settings_accept_the_dev_config_and_secrets(
    tilt: TiltfileRun, infra_docs: list[Doc], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = find([o.doc for o in tilt.objects], "ConfigMap", service)["data"]
    for key in list(os.environ):
        if key.startswith(("FLEET_", "DATABASE_", "AMQP_", "REDIS_", "SMTP_", "JWT_")):
            monkeypatch.delenv(key)
    for key, value in {**config, **secret_data(infra_docs, f"{service}-env")}.items():
        monkeypatch.setenv(key, value)
    settings = SETTINGS[service]()
    assert settings.fleet_env == "local"
    assert settings.port == PORTS[service]


def test_urls_in_the_secrets_reach_the_infra_services_with_its_credentials(
    infra_docs: list[Doc],
) -> None:
    admin = secret_data(infra_docs, "postgres-admin")
    broker = secret_data(infra_docs, "rabbitmq-admin")
    job_env = {
        e["name"]: e.get("value")
        for e in pod_spec(find(infra_docs, "Job", "db-bootstrap"))["containers"][0]["env"]
    }
    services = {
        d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
        for d in infra_docs
        if d["kind"] == "Service"
    }
    for service in SERVICES:
        for key, value in secret_data(infra_docs, f"{service}-env").items():
            if not key.endswith("_URL"):
                continue
            url = urlsplit(value)
            assert url.hostname in services, f"{service} {key}: no Service {url.hostname}"
            assert url.port in services[url.hostname], f"{service} {key}: port {url.port}"
            if key == "DATABASE_URL":
                assert url.username == f"fleet_{service}"
                assert url.password == admin[f"FLEET_{service.upper()}_DB_PASSWORD"]
                assert url.path == f"/{job_env['FLEET_DATABASE']}"
            if key == "AMQP_URL":
                assert (url.username, url.password) == (
                    broker["RABBITMQ_DEFAULT_USER"],
                    broker["RABBITMQ_DEFAULT_PASS"],
                )


def test_every_secret_the_pods_read_is_created_for_them(
    tilt: TiltfileRun, infra_docs: list[Doc]
) -> None:
    created = {d["metadata"]["name"] for d in infra_docs if d["kind"] == "Secret"}
    script = (TILT / "scripts" / "ensure-jwt-keys.sh").read_text()
    default_key_secret = re.search(r"secret=\$\{3:-([a-z0-9-]+)\}", script)
    assert default_key_secret
    created.add(default_key_secret.group(1))
    referenced: set[str] = set()
    for workload in tilt.workloads():
        spec = pod_spec(workload.doc)
        for container in spec["containers"]:
            referenced |= {
                s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s
            }
            referenced |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
        referenced |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    assert referenced - created == set()
    assert "auth-jwt-keys" in referenced


# --- the things that run for real -------------------------------------------------------------


@pytest.fixture
def bootstrap_database() -> Iterator[tuple[Stack, dict[str, str]]]:
    stack = Stack.from_env().with_(database=f"fleet_tilt_{uuid.uuid4().hex[:10]}")
    env = {
        **os.environ,
        "PGHOST": stack.pg_host,
        "PGPORT": str(stack.pg_port),
        "PGUSER": stack.pg_admin_user,
        "PGDATABASE": "postgres",
    }
    yield stack, env
    subprocess.run(
        [
            "psql",
            "--no-psqlrc",
            "--quiet",
            "-c",
            f'DROP DATABASE IF EXISTS "{stack.database}" WITH (FORCE)',
        ],
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.mark.integration
def test_db_bootstrap_creates_each_service_role_and_private_schema(
    infra_docs: list[Doc], bootstrap_database: tuple[Stack, dict[str, str]], tmp_path: Path
) -> None:
    stack, env = bootstrap_database
    assert shutil.which("psql"), "psql (PostgreSQL's client) is needed"
    script = tmp_path / "bootstrap.sql"
    script.write_text(find(infra_docs, "ConfigMap", "db-bootstrap")["data"]["bootstrap.sql"])
    env |= {
        f"FLEET_{s.upper()}_DB_PASSWORD": f"fleet_{s}"
        for s in ("auth", "catalog", "orders", "worker")
    }
    env["FLEET_DATABASE"] = stack.database
    job = pod_spec(find(infra_docs, "Job", "db-bootstrap"))["containers"][0]
    assert job["command"][0] == "psql"
    for _ in range(2):  # idempotent: the Job may run again at any time
        result = subprocess.run(
            [*job["command"][:-1], f"--file={script}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "", "the script prints nothing (no password in the logs)"

    def query(sql: str) -> str:
        return subprocess.run(
            ["psql", "--no-psqlrc", "-Atc", sql, stack.database],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    owners = query(
        "SELECT string_agg(nspname || '=' || pg_get_userbyid(nspowner), ',' ORDER BY nspname) "
        "FROM pg_namespace WHERE nspname IN ('auth', 'catalog', 'orders', 'worker')"
    )
    assert owners == "auth=fleet_auth,catalog=fleet_catalog,orders=fleet_orders,worker=fleet_worker"
    assert query("SELECT has_schema_privilege('fleet_orders', 'catalog', 'USAGE')") == "f"
    assert (
        query("SELECT has_database_privilege('fleet_orders', current_database(), 'CONNECT')") == "t"
    )
    settings = query(
        "SELECT string_agg(array_to_string(setconfig, ','), ';') FROM pg_db_role_setting "
        "WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert "search_path=orders" in settings


def fake_kubectl(directory: Path, *, secret_exists: bool) -> Path:
    """A kubectl that records its arguments and keeps the files `create secret` would upload."""
    log = directory / "kubectl.log"
    script = directory / "kubectl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$*" in\n'
        f'  *" get secret "*) exit {0 if secret_exists else 1} ;;\n'
        '  *" create secret generic "*)\n'
        '    for arg in "$@"; do\n'
        '      case "$arg" in --from-file=*)\n'
        "        spec=${arg#--from-file=}; name=${spec%%=*}; file=${spec#*=}\n"
        f'        mkdir -p "{directory}/uploaded" && cp "$file" "{directory}/uploaded/$name" ;;\n'
        "      esac\n"
        "    done ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def run_key_script(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(TILT / "scripts" / "ensure-jwt-keys.sh"), "kind-fleet", NAMESPACE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_jwt_key_script_creates_a_key_auth_signs_with(tmp_path: Path) -> None:
    assert shutil.which("openssl"), "openssl is needed to make the signing key"
    log = fake_kubectl(tmp_path, secret_exists=False)
    result = run_key_script(tmp_path)
    assert result.returncode == 0, result.stderr
    (key_file,) = (tmp_path / "uploaded").iterdir()
    assert key_file.suffix == ".pem"
    assert KID_PATTERN.match(key_file.stem)
    ring = KeyRing.load(tmp_path / "uploaded")
    assert ring.kids == [key_file.stem]
    token = ring.sign({"sub": "someone", "iss": "fleet-auth", "aud": "fleet"})
    assert token.count(".") == 2
    calls = log.read_text().splitlines()
    assert all(c.startswith(f"--context kind-fleet --namespace {NAMESPACE} ") for c in calls)
    assert any(" create secret generic auth-jwt-keys " in f" {c} " for c in calls)


def test_jwt_key_script_keeps_an_existing_key(tmp_path: Path) -> None:
    log = fake_kubectl(tmp_path, secret_exists=True)
    result = run_key_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c for c in log.read_text().splitlines() if "create" in c] == []
    assert not (tmp_path / "uploaded").exists()


def test_local_resources_name_real_scripts(tilt: TiltfileRun) -> None:
    keys = tilt.local_resources["auth-jwt-keys"]
    assert isinstance(keys.cmd, list)
    script = Path(keys.cmd[0])
    assert script.is_file()
    assert os.access(script, os.X_OK)
    assert keys.cmd[1:] == ["kind-fleet", NAMESPACE]
