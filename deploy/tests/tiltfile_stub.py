"""Tilt's Tiltfile API, stood in for: evaluate tilt/Tiltfile offline and record what it asks for.

A Tiltfile is Starlark; starlark-pyo3 runs it here. Every builtin it may call is a Python function
with the parameter names, order and defaults of Tilt's API reference (docs.tilt.dev/api.html,
generated from tilt-dev/tilt's internal/tiltfile/api), so a misspelt keyword, a missing argument
or a builtin Tilt does not have fails here as it fails in `tilt up`. Nothing is built, deployed or
run: the functions record their calls, and `assemble()` checks the result the way Tilt assembles
resources (workloads by name, objects claimed once, dependencies that exist, images in use).

Two calls are real rather than recorded: `helm()` renders the chart with the Helm SDK (like the
`helm template` Tilt runs, namespace injected as Tilt does), so the recorded objects are the ones
Tilt would apply; `read_file()` and `os.path.exists()` read the repository.
`load('ext://restart_process', ...)` gets the extension's `docker_build_with_restart`, which,
like the extension, declares a base image and a child image whose entrypoint is the restart
wrapper and whose live update ends by writing the restart file.
"""

from __future__ import annotations

import functools
import inspect
import os
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import starlark
import yaml

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ClusterSecretStore",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
LABEL_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"
EXTENSION_RESTART_FILE = "/tmp/.restart-proc"  # noqa: S108 - the extension's default, not ours


class TiltfileError(Exception):
    """What `tilt up` would report as a Tiltfile error."""


# --- values Tilt's builtins return ---------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """Tilt's Blob: text that is content, not a path (`k8s_yaml` tells them apart)."""

    text: str


@dataclass(frozen=True)
class Sync:
    local_path: str
    remote_path: str


@dataclass(frozen=True)
class Run:
    cmd: str | list[str]
    trigger: list[str]
    echo_off: bool


@dataclass(frozen=True)
class FallBackOn:
    files: list[str]


@dataclass(frozen=True)
class RestartContainer:
    pass


LiveUpdateStep = Sync | Run | FallBackOn | RestartContainer


@dataclass(frozen=True)
class PortForward:
    local_port: int
    container_port: int | None
    name: str | None
    link_path: str | None
    host: str | None


@dataclass(frozen=True)
class Link:
    url: str
    name: str | None


# --- what the Tiltfile declared --------------------------------------------------------------


@dataclass
class ImageBuild:
    ref: str
    context: str
    dockerfile: str
    dockerfile_contents: str
    live_update: list[LiveUpdateStep]
    entrypoint: str | list[str]
    only: list[str]
    ignore: list[str]
    target: str
    build_args: dict[str, str]

    def syncs(self) -> list[Sync]:
        return [step for step in self.live_update if isinstance(step, Sync)]


@dataclass
class RestartingImage:
    """One `docker_build_with_restart` call (the images it declared are in `images`)."""

    ref: str
    base_ref: str
    entrypoint: str | list[str]
    restart_file: str


@dataclass
class K8sResource:
    workload: str
    new_name: str
    port_forwards: list[PortForward]
    resource_deps: list[str]
    objects: list[str]
    labels: list[str]
    links: list[Link]
    auto_init: bool

    @property
    def name(self) -> str:
        return self.new_name or self.workload


@dataclass
class LocalResource:
    name: str
    cmd: str | list[str]
    resource_deps: list[str]
    labels: list[str]
    deps: list[str]
    auto_init: bool


@dataclass
class HelmCall:
    chart: str
    name: str
    namespace: str
    values: list[str]


@dataclass
class K8sObject:
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.doc["metadata"].get("namespace", ""))

    def selector_parts(self) -> tuple[str, str, str]:
        return (self.name.lower(), self.kind.lower(), self.namespace.lower())


@dataclass
class Assembly:
    """Tilt's resources after assembly: name -> objects, plus what no resource claimed."""

    resources: dict[str, list[K8sObject]]
    uncategorized: list[K8sObject]


@dataclass
class TiltfileRun:
    """Everything one evaluation of a Tiltfile declared."""

    main_dir: Path
    images: dict[str, ImageBuild] = field(default_factory=dict)
    restarting: dict[str, RestartingImage] = field(default_factory=dict)
    objects: list[K8sObject] = field(default_factory=list)
    k8s_resources: dict[str, K8sResource] = field(default_factory=dict)
    local_resources: dict[str, LocalResource] = field(default_factory=dict)
    helm_calls: list[HelmCall] = field(default_factory=list)
    local_commands: list[str | list[str]] = field(default_factory=list)
    read_files: list[str] = field(default_factory=list)
    watched: list[str] = field(default_factory=list)
    watch_ignores: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    enabled_resources: list[str] | None = None
    config_settings: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def workloads(self) -> list[K8sObject]:
        return [obj for obj in self.objects if obj.kind in WORKLOAD_KINDS]

    def workload_names(self) -> dict[str, K8sObject]:
        """Tilt's resource name for each workload: its name, qualified only when ambiguous."""
        counts: dict[str, int] = {}
        for obj in self.workloads():
            counts[obj.name.lower()] = counts.get(obj.name.lower(), 0) + 1
        return {
            (
                obj.name.lower()
                if counts[obj.name.lower()] == 1
                else f"{obj.name.lower()}:{obj.kind.lower()}"
            ): obj
            for obj in self.workloads()
        }

    def image_refs_in_objects(self) -> set[str]:
        refs: set[str] = set()
        for obj in self.workloads():
            for container in pod_spec(obj.doc).get("containers", []):
                refs.add(image_name(str(container.get("image", ""))))
        return refs

    def assemble(self) -> Assembly:
        """Group objects into resources as Tilt does, or raise what Tilt would report."""
        workloads = self.workload_names()
        resources: dict[str, list[K8sObject]] = {name: [obj] for name, obj in workloads.items()}
        claimed = {id(obj) for obj in workloads.values()}
        # Services join the workload whose pods they select.
        for obj in self.objects:
            selector = obj.doc.get("spec", {}).get("selector") or {}
            if obj.kind != "Service" or not selector:
                continue
            for name, workload in workloads.items():
                labels = pod_template_labels(workload.doc)
                if all(labels.get(k) == v for k, v in selector.items()):
                    resources[name].append(obj)
                    claimed.add(id(obj))
                    break
        for resource in self.k8s_resources.values():
            target = self._resource_objects(resource, resources)
            for selector in resource.objects:
                found = self._claim(resource.name, selector, claimed)
                target.append(found)
        uncategorized = [obj for obj in self.objects if id(obj) not in claimed]
        self._check_dependencies(set(resources))
        self._check_images()
        return Assembly(resources=resources, uncategorized=uncategorized)

    @staticmethod
    def _resource_objects(
        resource: K8sResource, resources: dict[str, list[K8sObject]]
    ) -> list[K8sObject]:
        """The object list `resource` configures (renamed if asked), or a new one."""
        if not resource.workload:
            if not (resource.new_name and resource.objects):
                msg = "k8s_resource: a new resource needs both `new_name` and `objects`"
                raise TiltfileError(msg)
            return resources.setdefault(resource.new_name, [])
        if resource.workload not in resources:
            msg = (
                f"k8s_resource: no workload named {resource.workload!r}; "
                f"existing: {sorted(resources)}"
            )
            raise TiltfileError(msg)
        if resource.new_name:
            resources[resource.new_name] = resources.pop(resource.workload)
        return resources[resource.name]

    def _claim(self, resource: str, selector: str, claimed: set[int]) -> K8sObject:
        matches = [obj for obj in self.objects if selector_matches(selector, obj)]
        if len(matches) != 1:
            msg = (
                f"k8s_resource {resource!r}: object selector {selector!r} "
                f"matches {len(matches)} objects, not exactly one"
            )
            raise TiltfileError(msg)
        if id(matches[0]) in claimed:
            msg = f"object {selector!r} already belongs to a resource"
            raise TiltfileError(msg)
        claimed.add(id(matches[0]))
        return matches[0]

    def _check_dependencies(self, k8s_names: set[str]) -> None:
        known = k8s_names | set(self.local_resources)
        declared: list[tuple[str, list[str]]] = [
            (r.name, r.resource_deps) for r in self.k8s_resources.values()
        ]
        declared += [(r.name, r.resource_deps) for r in self.local_resources.values()]
        for name, deps in declared:
            missing = [dep for dep in deps if dep not in known]
            if missing:
                msg = f"resource {name!r} depends on unknown resources {missing}"
                raise TiltfileError(msg)
        for name in self.enabled_resources or []:
            if name not in known:
                msg = f"config.set_enabled_resources: no resource named {name!r}"
                raise TiltfileError(msg)

    def _check_images(self) -> None:
        used = self.image_refs_in_objects()
        for image in self.images.values():
            used |= {
                image_name(line.split()[1])
                for line in image.dockerfile_contents.splitlines()
                if line.strip().upper().startswith("FROM ") and len(line.split()) > 1
            }
        unused = sorted(ref for ref in self.images if ref not in used)
        if unused:
            msg = f"images built but used by no resource: {unused}"
            raise TiltfileError(msg)


def image_name(reference: str) -> str:
    """`repo/name:tag@digest` -> `repo/name` (Tilt matches images by name, not tag)."""
    without_digest = reference.split("@", 1)[0]
    head, _, tail = without_digest.rpartition("/")
    name = tail.split(":", 1)[0]
    return f"{head}/{name}" if head else name


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec", {})
    kind = doc.get("kind")
    if kind == "Pod":
        return dict(spec)
    if kind == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"]["spec"])
    return dict(spec.get("template", {}).get("spec", {}))


def pod_template_labels(doc: Mapping[str, Any]) -> dict[str, str]:
    if doc.get("kind") == "Pod":
        return dict(doc.get("metadata", {}).get("labels") or {})
    template = doc.get("spec", {}).get("template", {})
    return dict(template.get("metadata", {}).get("labels") or {})


def selector_matches(selector: str, obj: K8sObject) -> bool:
    """Tilt's object selector `name[:kind[:namespace]]`, case-insensitive, exact parts."""
    parts = selector.lower().split(":")
    return all(want == have for want, have in zip(parts, obj.selector_parts(), strict=False))


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_chart(chart: Path, *, name: str, namespace: str, values: Sequence[Path]) -> str:
    """`helm template NAME CHART --namespace NS -f VALUES...`, as one YAML stream."""
    merged: dict[str, Any] = {}
    for path in values:
        merged = _deep_merge(merged, yaml.safe_load(path.read_text()) or {})
    loaded = helm_python.Chart.load(chart)
    try:
        rendered = loaded.render(merged, name=name, namespace=namespace, is_install=True)
    finally:
        loaded.close()
    documents = [
        text
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml")) and "/tests/" not in path and text.strip()
    ]
    return "\n---\n".join(documents)


def inject_namespace(text: str, namespace: str) -> list[dict[str, Any]]:
    """Tilt's helm(namespace=...): every namespaced object without one gets it."""
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in docs:
        if doc.get("kind") not in CLUSTER_SCOPED_KINDS:
            doc.setdefault("metadata", {}).setdefault("namespace", namespace)
    return docs


# --- the evaluator ---------------------------------------------------------------------------


class TiltStub:
    """Evaluates one Tiltfile with the stand-in builtins; `run` holds what it declared."""

    def __init__(
        self,
        tiltfile: Path,
        *,
        args: Sequence[str] = (),
        k8s_context: str = "kind-fleet",
        subcommand: str = "up",
        built_charts: Mapping[Path, Path] | None = None,
    ) -> None:
        """`built_charts` maps a chart directory to a copy whose charts/ holds its built
        dependencies (what the Tiltfile's `helm dependency update` calls leave behind)."""
        self.tiltfile = tiltfile.resolve()
        self.built_charts = {k.resolve(): v for k, v in (built_charts or {}).items()}
        self.run = TiltfileRun(main_dir=self.tiltfile.parent)
        self.args = list(args)
        self.context = k8s_context
        self.subcommand = subcommand

    # paths are relative to the Tiltfile's directory, as in Tilt
    def _path(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.run.main_dir, path))

    def _paths(self, value: str | Sequence[str] | None) -> list[str]:
        if value is None:
            return []
        return [self._path(value)] if isinstance(value, str) else [self._path(p) for p in value]

    @staticmethod
    def _strings(value: str | Sequence[str] | None) -> list[str]:
        if value is None:
            return []
        return [value] if isinstance(value, str) else [str(v) for v in value]

    # --- builtins (names and parameters as in Tilt's API reference) ---

    def docker_build(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        ref: str,
        context: str,
        build_args: dict[str, str] | None = None,
        dockerfile: str = "Dockerfile",
        dockerfile_contents: str | Blob = "",
        live_update: list[LiveUpdateStep] | None = None,
        match_in_env_vars: bool = False,
        ignore: str | list[str] | None = None,
        only: str | list[str] | None = None,
        entrypoint: str | list[str] | None = None,
        target: str = "",
        ssh: str | list[str] = "",
        network: str = "",
        secret: str | list[str] = "",
        extra_tag: str | list[str] = "",
        container_args: list[str] | None = None,
        cache_from: str | list[str] | None = None,
        pull: bool = False,
        platform: str = "",
        extra_hosts: str | list[str] | None = None,
    ) -> None:
        if ref in self.run.images:
            msg = f"docker_build: image {ref!r} is already defined"
            raise TiltfileError(msg)
        context_dir = self._path(context)
        if not os.path.isdir(context_dir):
            msg = f"docker_build({ref!r}): context {context_dir} is not a directory"
            raise TiltfileError(msg)
        contents = (
            dockerfile_contents.text
            if isinstance(dockerfile_contents, Blob)
            else dockerfile_contents
        )
        if contents and dockerfile != "Dockerfile":
            msg = f"docker_build({ref!r}): cannot set both dockerfile and dockerfile_contents"
            raise TiltfileError(msg)
        if any(not isinstance(value, str) for value in (build_args or {}).values()):
            msg = f"docker_build({ref!r}): build_args values must be strings: {build_args}"
            raise TiltfileError(msg)
        dockerfile_path = ""
        if not contents:
            dockerfile_path = self._path(dockerfile)
            if not os.path.isfile(dockerfile_path):
                msg = f"docker_build({ref!r}): no Dockerfile at {dockerfile_path}"
                raise TiltfileError(msg)
        steps = list(live_update or [])
        order = {FallBackOn: 0, Sync: 1, Run: 2, RestartContainer: 3}
        ranks = [order[type(step)] for step in steps]
        if ranks != sorted(ranks):
            msg = f"docker_build({ref!r}): live_update steps must be fall_back_on, sync, run"
            raise TiltfileError(msg)
        for step in steps:
            if isinstance(step, Sync):
                if not posixpath.isabs(step.remote_path):
                    msg = f"sync: remote path {step.remote_path!r} must be absolute"
                    raise TiltfileError(msg)
                if os.path.commonpath([step.local_path, context_dir]) != context_dir:
                    msg = f"sync: {step.local_path} is not inside the context {context_dir}"
                    raise TiltfileError(msg)
        self.run.images[ref] = ImageBuild(
            ref=ref,
            context=context_dir,
            dockerfile=dockerfile_path,
            dockerfile_contents=contents,
            live_update=steps,
            entrypoint=entrypoint or [],
            only=self._strings(only),
            ignore=self._strings(ignore),
            target=target,
            build_args=dict(build_args or {}),
        )

    def sync(self, local_path: str, remote_path: str) -> Sync:
        return Sync(local_path=self._path(local_path), remote_path=remote_path)

    def run_step(
        self, cmd: str | list[str], trigger: str | list[str] | None = None, echo_off: bool = False
    ) -> Run:
        return Run(cmd=cmd, trigger=self._paths(trigger), echo_off=echo_off)

    def fall_back_on(self, files: str | list[str]) -> FallBackOn:
        return FallBackOn(files=self._paths(files))

    def restart_container(self) -> RestartContainer:
        return RestartContainer()

    def k8s_yaml(self, yaml: str | list[str] | Blob, allow_duplicates: bool = False) -> None:
        texts: list[str] = []
        sources = yaml if isinstance(yaml, list) else [yaml]
        for source in sources:
            if isinstance(source, Blob):
                texts.append(source.text)
            else:
                path = self._path(str(source))
                if not os.path.isfile(path):
                    msg = f"k8s_yaml: no file {path}"
                    raise TiltfileError(msg)
                self.run.watched.append(path)
                texts.append(Path(path).read_text())
        for text in texts:
            for doc in (d for d in load_all(text) if d):
                obj = K8sObject(doc)
                duplicate = any(
                    o.selector_parts() == obj.selector_parts() for o in self.run.objects
                )
                if duplicate and not allow_duplicates:
                    msg = f"k8s_yaml: duplicate object {obj.kind}/{obj.name}"
                    raise TiltfileError(msg)
                self.run.objects.append(obj)

    def k8s_resource(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        workload: str = "",
        new_name: str = "",
        port_forwards: str | int | PortForward | list[str | int | PortForward] | None = None,
        extra_pod_selectors: dict[str, str] | list[dict[str, str]] | None = None,
        trigger_mode: int = 0,
        resource_deps: list[str] | None = None,
        objects: list[str] | None = None,
        auto_init: bool = True,
        pod_readiness: str = "",
        links: str | Link | list[str | Link] | None = None,
        labels: str | list[str] | None = None,
        discovery_strategy: str = "",
    ) -> None:
        name = new_name or workload
        if not name:
            msg = "k8s_resource: `workload` or `new_name` is required"
            raise TiltfileError(msg)
        if name in self.run.k8s_resources:
            msg = f"k8s_resource {name!r} configured twice"
            raise TiltfileError(msg)
        forwards = port_forwards if isinstance(port_forwards, list) else [port_forwards]
        link_list = links if isinstance(links, list) else [links]
        self.run.k8s_resources[name] = K8sResource(
            workload=workload,
            new_name=new_name,
            port_forwards=[to_port_forward(f) for f in forwards if f is not None],
            resource_deps=list(resource_deps or []),
            objects=list(objects or []),
            labels=check_labels(self._strings(labels)),
            links=[
                link if isinstance(link, Link) else Link(str(link), None)
                for link in link_list
                if link
            ],
            auto_init=auto_init,
        )

    def local_resource(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        name: str,
        cmd: str | list[str],
        deps: str | list[str] | None = None,
        trigger_mode: int = 0,
        resource_deps: list[str] | None = None,
        ignore: str | list[str] | None = None,
        auto_init: bool = True,
        serve_cmd: str | list[str] = "",
        cmd_bat: str | list[str] = "",
        serve_cmd_bat: str | list[str] = "",
        allow_parallel: bool = False,
        links: str | Link | list[str | Link] | None = None,
        labels: list[str] | None = None,
        env: dict[str, str] | None = None,
        serve_env: dict[str, str] | None = None,
        readiness_probe: object = None,
        dir: str = "",
        serve_dir: str = "",
    ) -> None:
        if name in self.run.local_resources:
            msg = f"local_resource {name!r} defined twice"
            raise TiltfileError(msg)
        self.run.local_resources[name] = LocalResource(
            name=name,
            cmd=cmd,
            resource_deps=list(resource_deps or []),
            labels=check_labels(self._strings(labels)),
            deps=self._paths(deps),
            auto_init=auto_init,
        )

    def helm(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        pathToChartDir: str,  # noqa: N803 - Tilt's name
        name: str = "",
        namespace: str = "",
        values: str | list[str] | None = None,
        set: str | list[str] | None = None,
        kube_version: str = "",
        skip_crds: bool = False,
    ) -> Blob:
        chart = self._path(pathToChartDir)
        if not os.path.isfile(os.path.join(chart, "Chart.yaml")):
            msg = f"helm: no chart at {chart}"
            raise TiltfileError(msg)
        if set:
            msg = "helm(set=...) is not supported by this stand-in; use a values file"
            raise NotImplementedError(msg)
        value_files = self._paths(values)
        for path in value_files:
            if not os.path.isfile(path):
                msg = f"helm: no values file {path}"
                raise TiltfileError(msg)
        self.run.helm_calls.append(
            HelmCall(chart=chart, name=name, namespace=namespace, values=value_files)
        )
        text = render_chart(
            self.built_charts.get(Path(chart), Path(chart)),
            name=name or "chart",
            namespace=namespace or "default",
            values=[Path(p) for p in value_files],
        )
        docs = inject_namespace(text, namespace) if namespace else load_all(text)
        return Blob(yaml.safe_dump_all(docs, sort_keys=False))

    def port_forward(
        self,
        local_port: int,
        container_port: int | None = None,
        name: str | None = None,
        link_path: str | None = None,
        host: str | None = None,
    ) -> PortForward:
        return PortForward(local_port, container_port, name, link_path, host)

    def link(self, url: str, name: str | None = None) -> Link:
        return Link(url, name)

    def local(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        command: str | list[str],
        quiet: bool = False,
        command_bat: str | list[str] = "",
        echo_off: bool = False,
        env: dict[str, str] | None = None,
        dir: str = "",
        stdin: str | Blob | None = None,
    ) -> Blob:
        self.run.local_commands.append(command)
        return Blob("")

    def read_file(self, file_path: str, default: str | None = None) -> str:
        path = self._path(file_path)
        self.run.read_files.append(path)
        if not os.path.isfile(path):
            if default is not None:
                return default
            msg = f"read_file: no file {path}"
            raise TiltfileError(msg)
        return Path(path).read_text()

    def watch_file(self, file_path: str) -> None:
        self.run.watched.append(self._path(file_path))

    def watch_settings(self, ignore: str | list[str]) -> None:
        self.run.watch_ignores.extend(self._strings(ignore))

    def version_settings(self, check_updates: bool = True, constraint: str = "") -> None:
        pass

    def warn(self, msg: str) -> None:
        self.run.warnings.append(msg)

    def k8s_context(self) -> str:
        return self.context

    def decode_yaml_stream(self, yaml: str | Blob) -> list[Any]:
        text = yaml.text if isinstance(yaml, Blob) else yaml
        return [doc for doc in load_all(text) if doc is not None]

    def encode_yaml_stream(self, objs: list[Any]) -> Blob:
        return Blob(yaml.safe_dump_all(objs, sort_keys=False))

    # config.*
    def define_string_list(self, name: str, args: bool = False, usage: str = "") -> None:
        self.run.config_settings[name] = ("string_list", args)

    def define_string(self, name: str, args: bool = False, usage: str = "") -> None:
        self.run.config_settings[name] = ("string", args)

    def define_bool(self, name: str, args: bool = False, usage: str = "") -> None:
        self.run.config_settings[name] = ("bool", args)

    def parse(self) -> dict[str, Any]:
        """`tilt up -- ARGS`: positional args to the `args=True` setting, `--name value` flags."""
        result: dict[str, Any] = {}
        positional: list[str] = []
        words = list(self.args)
        while words:
            word = words.pop(0)
            if not word.startswith("--"):
                positional.append(word)
                continue
            name, _, value = word[2:].partition("=")
            if name not in self.run.config_settings:
                msg = f"config.parse: unknown flag --{name}"
                raise TiltfileError(msg)
            kind, _ = self.run.config_settings[name]
            if kind == "bool":
                result[name] = value.lower() != "false"
                continue
            if not value:
                value = words.pop(0)
            if kind == "string_list":
                result.setdefault(name, []).append(value)
            else:
                result[name] = value
        if positional:
            takers = [n for n, (_, args) in self.run.config_settings.items() if args]
            if not takers:
                msg = f"config.parse: unexpected arguments {positional}"
                raise TiltfileError(msg)
            kind, _ = self.run.config_settings[takers[0]]
            result[takers[0]] = positional if kind == "string_list" else positional[0]
        return result

    def set_enabled_resources(self, resources: list[str]) -> None:
        self.run.enabled_resources = list(resources)

    # os.path.*
    def path_join(self, path: str, *paths: str) -> str:
        return os.path.join(path, *paths)

    def path_exists(self, path: str) -> bool:
        return os.path.exists(self._path(path))

    # --- evaluation ---

    def _builtins(self) -> dict[str, Callable[..., Any]]:
        return {
            "docker_build": self.docker_build,
            "sync": self.sync,
            "run": self.run_step,
            "fall_back_on": self.fall_back_on,
            "restart_container": self.restart_container,
            "k8s_yaml": self.k8s_yaml,
            "k8s_resource": self.k8s_resource,
            "local_resource": self.local_resource,
            "helm": self.helm,
            "port_forward": self.port_forward,
            "link": self.link,
            "local": self.local,
            "read_file": self.read_file,
            "watch_file": self.watch_file,
            "watch_settings": self.watch_settings,
            "version_settings": self.version_settings,
            "warn": self.warn,
            "k8s_context": self.k8s_context,
            "decode_yaml_stream": self.decode_yaml_stream,
            "encode_yaml_stream": self.encode_yaml_stream,
        }

    def _namespaces(self) -> dict[str, Callable[..., Any]]:
        """Functions bound into the `config`, `os` and `shlex` structs by the prelude."""
        return {
            "_config_define_string_list": self.define_string_list,
            "_config_define_string": self.define_string,
            "_config_define_bool": self.define_bool,
            "_config_parse": self.parse,
            "_config_set_enabled_resources": self.set_enabled_resources,
            "_os_getcwd": lambda: str(self.run.main_dir),
            "_os_getenv": lambda key, default=None: os.environ.get(key, default),
            "_os_path_abspath": self._path,
            "_os_path_basename": os.path.basename,
            "_os_path_dirname": os.path.dirname,
            "_os_path_exists": self.path_exists,
            "_os_path_join": self.path_join,
            "_os_path_realpath": lambda path: os.path.realpath(self._path(path)),
            "_os_path_relpath": lambda targpath, basepath="": os.path.relpath(
                targpath, basepath or self.run.main_dir
            ),
            "_shlex_quote": shlex.quote,
        }

    PRELUDE = """
config = struct(
    main_dir = _config_main_dir,
    main_path = _config_main_path,
    tilt_subcommand = _config_tilt_subcommand,
    define_string_list = _config_define_string_list,
    define_string = _config_define_string,
    define_bool = _config_define_bool,
    parse = _config_parse,
    set_enabled_resources = _config_set_enabled_resources,
)
os = struct(
    name = "posix",
    getcwd = _os_getcwd,
    getenv = _os_getenv,
    path = struct(
        abspath = _os_path_abspath,
        basename = _os_path_basename,
        dirname = _os_path_dirname,
        exists = _os_path_exists,
        join = _os_path_join,
        realpath = _os_path_realpath,
        relpath = _os_path_relpath,
    ),
)
shlex = struct(quote = _shlex_quote)
"""

    def _load_extension(self, module_id: str) -> starlark.FrozenModule:
        if module_id != "ext://restart_process":
            msg = f"load: this stand-in knows no extension {module_id!r}"
            raise TiltfileError(msg)
        module = starlark.Module()
        module.add_callable("docker_build_with_restart", expose(self.docker_build_with_restart))
        return module.freeze()

    def docker_build_with_restart(  # noqa: PLR0917 - Tilt's positional parameters
        self,
        ref: str,
        context: str,
        entrypoint: str | list[str],
        live_update: list[LiveUpdateStep],
        base_suffix: str = "-base",
        restart_file: str = EXTENSION_RESTART_FILE,
        **kwargs: Any,
    ) -> None:
        """The restart_process extension: a base image built as asked, a child image adding the
        restart wrapper, whose entrypoint is the wrapper and whose live update ends by writing
        the restart file."""
        if not live_update:
            msg = "`docker_build_with_restart` requires at least one live_update step"
            raise TiltfileError(msg)
        if any(isinstance(step, RestartContainer) for step in live_update):
            msg = "`docker_build_with_restart` is not compatible with restart_container()"
            raise TiltfileError(msg)
        try:
            inspect.signature(self.docker_build).bind(ref, context, **kwargs)
        except TypeError as error:
            msg = f"docker_build_with_restart: {error}"
            raise TiltfileError(msg) from error
        base_ref = f"{ref}{base_suffix}"
        self.docker_build(base_ref, context, **kwargs)
        child_dockerfile = "\n".join(
            [
                "FROM tiltdev/restart-helper:2021-11-03 as restart-helper",
                f"FROM {base_ref}",
                f'RUN ["touch", "{restart_file}"]',
                "COPY --from=restart-helper /tilt-restart-wrapper /",
                "COPY --from=restart-helper /entr /",
            ]
        )
        wrapper = ["/tilt-restart-wrapper", f"--watch_file={restart_file}"]
        wrapped = (
            [*wrapper, "sh", "-c", entrypoint]
            if isinstance(entrypoint, str)
            else [
                *wrapper,
                *entrypoint,
            ]
        )
        child_kwargs = {
            k: v
            for k, v in kwargs.items()
            if k not in ("dockerfile", "dockerfile_contents", "target")
        }
        self.docker_build(
            ref,
            context,
            entrypoint=wrapped,
            dockerfile_contents=child_dockerfile,
            live_update=[*live_update, self.run_step(f"date > {restart_file}")],
            **child_kwargs,
        )
        self.run.restarting[ref] = RestartingImage(
            ref=ref, base_ref=base_ref, entrypoint=entrypoint, restart_file=restart_file
        )

    def evaluate(self, source: str | None = None) -> TiltfileRun:
        """Run the Tiltfile (or `source` in its place); raises StarlarkError or TiltfileError."""
        text = self.tiltfile.read_text() if source is None else source
        dialect = starlark.Dialect.extended()
        dialect.enable_top_level_stmt = True
        globals_ = starlark.Globals.extended_by(
            [starlark.LibraryExtension.StructType, starlark.LibraryExtension.Print]
        )
        module = starlark.Module()
        for name, function in {**self._builtins(), **self._namespaces()}.items():
            module.add_callable(name, expose(function))
        module["_config_main_dir"] = str(self.run.main_dir)
        module["_config_main_path"] = str(self.tiltfile)
        module["_config_tilt_subcommand"] = self.subcommand
        starlark.eval(module, starlark.parse("<prelude>", self.PRELUDE, dialect), globals_)
        starlark.eval(
            module,
            starlark.parse(str(self.tiltfile), text, dialect),
            globals_,
            starlark.FileLoader(self._load_extension),
        )
        return self.run


OPAQUE_TYPES = (Blob, Sync, Run, FallBackOn, RestartContainer, PortForward, Link)


def expose(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as a Starlark builtin: Tilt's own value types stay opaque to the Tiltfile (as
    in Tilt) and come back as themselves when passed to another builtin."""

    @functools.wraps(function)
    def builtin(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        return starlark.OpaquePythonObject(result) if isinstance(result, OPAQUE_TYPES) else result

    return builtin


def load_all(text: str) -> list[Any]:
    return list(yaml.safe_load_all(text))


def to_port_forward(value: str | int | PortForward) -> PortForward:
    if isinstance(value, PortForward):
        return value
    if isinstance(value, int):
        return PortForward(value, None, None, None, None)
    local_port, _, container_port = str(value).partition(":")
    return PortForward(
        int(local_port), int(container_port) if container_port else None, None, None, None
    )


def check_labels(labels: list[str]) -> list[str]:
    for label in labels:
        if not re.match(LABEL_PATTERN, label):
            msg = f"invalid label {label!r}"
            raise TiltfileError(msg)
    return labels
