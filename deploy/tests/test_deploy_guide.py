"""The deploy guide (docs/deploy.md) and the other docs stay true to the repository.

Every relative link in docs/ resolves (anchors included). In the guide, every repository path
exists; every helm command names a chart, values files, values keys and the release and
namespace `.github/workflows/deploy.yml` deploys; every `kubectl argo rollouts` command names a
Rollout the production render has; every resource a kubectl command names in `fleet` or
`fleet-data` is one the charts or deploy/k8s create; the secret store table is what the
ExternalSecrets read; the canary's steps and thresholds are the rendered ones; the tool versions
are deploy.yml's pins. Each checker is also shown to catch a broken input.
"""

from __future__ import annotations

import importlib
import itertools
import re
import shlex
import textwrap
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from deploy_support import (
    DOCKERFILE,
    ROOT,
    build_charts,
    image_build_args,
    load_documents,
    render_chart,
    validate_manifests,
)

DOCS = ROOT / "docs"
GUIDE = DOCS / "deploy.md"
HELM = ROOT / "deploy" / "helm"
DEPLOY_WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
DATA_SECRETS = ROOT / "deploy" / "k8s" / "base" / "external-secrets.yaml"
DEV_SECRETS = ROOT / "tilt" / "infra" / "secrets.yaml"
SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
ENVIRONMENTS = ("staging", "production")
PLACEHOLDERS = {"<svc>": SERVICES, "<env>": ENVIRONMENTS}
# What each `secretMounts` entry of a chart holds, by the last segment of its remote key.
MOUNT_PROPERTIES = {"jwt-keys": {"<kid>.pem"}}
# Namespaces whose resources the repository creates (the others belong to the operators).
OWN_NAMESPACES = ("fleet", "fleet-data")
KIND_ALIASES = {
    "cluster.postgresql.cnpg.io": "Cluster",
    "configmap": "ConfigMap",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "externalsecret": "ExternalSecret",
    "job": "Job",
    "rabbitmqcluster": "RabbitmqCluster",
    "rollout": "Rollout",
    "secret": "Secret",
    "service": "Service",
    "statefulset": "StatefulSet",
    "svc": "Service",
}
FILE_EXTENSIONS = ("json", "md", "pem", "py", "tpl", "txt", "yaml", "yml")

Doc = dict[str, Any]


# --- markdown -----------------------------------------------------------------------------------

FENCE = re.compile(
    r"^[ \t]*(?P<fence>```|~~~)(?P<info>[^\n]*)\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.M | re.S,
)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^[ \t]*\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+\"[^\"]*\")?[ \t]*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SHELL_INFOS = {"", "sh", "bash", "shell", "console"}


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block."""
    return [(m["info"].strip(), textwrap.dedent(m["body"])) for m in FENCE.finditer(markdown)]


def prose(markdown: str) -> str:
    """The markdown without its fenced code blocks."""
    return FENCE.sub("", markdown)


def code_spans(text: str) -> list[str]:
    return [m[2].strip() for m in CODE_SPAN.finditer(text)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(prose(markdown)):
        base = slug(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(markdown: str) -> list[str]:
    text = CODE_SPAN.sub("", prose(markdown))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def link_problems(path: Path, markdown: str) -> list[str]:
    """Relative links of `markdown` (the text of `path`) to missing files or anchors."""
    problems = []
    for target in link_targets(markdown):
        if SCHEME.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / urllib.parse.unquote(file_part)).resolve() if file_part else path
        if file_part and not linked.exists():
            problems.append(f"{target}: no such file")
            continue
        if not anchor:
            continue
        if linked.suffix != ".md" or linked.is_dir():
            problems.append(f"{target}: an anchor into a file that is not markdown")
            continue
        text = linked.read_text(encoding="utf-8") if file_part else markdown
        if anchor not in anchors(text):
            problems.append(f"{target}: no heading #{anchor} in {linked.name}")
    return problems


def tables(markdown: str) -> list[list[list[str]]]:
    """Each table of the prose as rows of cells (header and separator rows dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*prose(markdown).splitlines(), ""]:
        if line.lstrip().startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            current.append(cells)
            continue
        if len(current) > 2:
            found.append([row for row in current[2:] if len(row) == len(current[0])])
        current = []
    return found


# --- shell --------------------------------------------------------------------------------------

LOOP = re.compile(r"^for (\w+) in (.+?); do\b\s*(.*)$")
ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)=(\"[^\"$`]*\"|'[^']*'|[^\s\"'$`]+)$")
COMMAND = re.compile(r"(?:^|(?<=[\s;|&(`\"]))((?:helm|kubectl|make)\s[^;|&)`]*)")


def shell_variables(markdown: str) -> dict[str, str]:
    """Plain `NAME=value` assignments of the code blocks (no command substitution)."""
    variables = {}
    for info, body in fenced_blocks(markdown):
        if info in SHELL_INFOS:
            for line in body.splitlines():
                if match := ASSIGNMENT.match(line.strip()):
                    variables[match[1]] = shlex.split(match[2])[0]
    return variables


def _substitute(line: str, loops: list[tuple[str, list[str]]]) -> list[str]:
    if not loops:
        return [line]
    expanded = []
    for values in itertools.product(*(words for _, words in loops)):
        text = line
        for (name, _), value in zip(loops, values, strict=True):
            text = re.sub(rf"\$\{{{name}\}}|\${name}\b", value, text)
        expanded.append(text)
    return expanded


def shell_lines(script: str, variables: Mapping[str, str]) -> list[str]:
    """The lines of a shell script with `for VAR in ...; do ... done` loops unrolled."""
    text = re.sub(r"\\\n\s*", " ", script)
    lines: list[str] = []
    loops: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if match := LOOP.match(line):
            words = [
                expanded
                for word in shlex.split(match[2])
                for expanded in (
                    variables.get(word[1:], word).split() if word.startswith("$") else [word]
                )
            ]
            loops.append((match[1], words))
            body = match[3].strip()
            if body.endswith("done"):
                lines += _substitute(body.removesuffix("done").strip().rstrip(";"), loops)
                loops.pop()
            elif body:
                lines += _substitute(body, loops)
        elif line.startswith("done"):
            loops.pop()
        else:
            lines += _substitute(line, loops)
    return lines


def guide_lines(markdown: str) -> list[str]:
    """Every line of the code blocks (shell ones unrolled) and every inline code span."""
    variables = shell_variables(markdown)
    lines = []
    for info, body in fenced_blocks(markdown):
        lines += shell_lines(body, variables) if info in SHELL_INFOS else body.splitlines()
    return lines + code_spans(prose(markdown))


def commands(markdown: str) -> list[list[str]]:
    """The helm, kubectl and make commands of the code blocks, and those written inline with a
    namespace (an inline `helm rollback` is a mention, `helm history fleet -n fleet` a command)."""
    variables = shell_variables(markdown)
    texts = [
        command
        for info, body in fenced_blocks(markdown)
        if info in SHELL_INFOS
        for line in shell_lines(body, variables)
        for command in COMMAND.findall(line)
    ]
    texts += [
        span
        for span in code_spans(prose(markdown))
        if span.startswith("make ")
        or (span.startswith(("helm ", "kubectl ")) and re.search(r"\s(-n|--namespace)\s", span))
    ]
    return [shlex.split(text, comments=True) for text in texts]


def split_options(words: list[str], with_value: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(positional words, option -> values); `--opt=value` and `--opt value` both count."""
    positional: list[str] = []
    options: dict[str, list[str]] = {}
    pending: str | None = None
    for word in words:
        if pending is not None:
            options.setdefault(pending, []).append(word)
            pending = None
        elif word.startswith("-") and "=" in word and word.split("=", 1)[0] in with_value:
            name, value = word.split("=", 1)
            options.setdefault(name, []).append(value)
        elif word in with_value:
            pending = word
        elif word.startswith("-"):
            options.setdefault(word, [])
        else:
            positional.append(word)
    return positional, options


def namespace_of(options: Mapping[str, list[str]]) -> str | None:
    values = options.get("-n", []) + options.get("--namespace", [])
    return values[-1] if values else None


# --- what the repository defines ----------------------------------------------------------------


@dataclass(frozen=True)
class DeployTarget:
    """The release and namespace deploy.yml ships, and its `helm upgrade` commands."""

    release: str
    namespace: str
    upgrades: tuple[tuple[str, ...], ...]


def deploy_target() -> DeployTarget:
    workflow = yaml.safe_load(DEPLOY_WORKFLOW.read_text(encoding="utf-8"))
    scripts = [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]
    upgrades = [
        tuple(shlex.split(command))
        for script in scripts
        for line in shell_lines(script, {})
        for command in COMMAND.findall(line)
        if command.startswith("helm upgrade")
    ]
    targets = {
        (words[3], namespace_of(split_options(list(words), HELM_VALUE_OPTIONS)[1]))
        for words in upgrades
    }
    assert len(targets) == 1, f"deploy.yml deploys more than one release: {targets}"
    ((release, namespace),) = targets
    assert namespace is not None
    return DeployTarget(release, namespace, tuple(upgrades))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def settings_fields(service: str) -> set[str]:
    """The environment variables the service's settings class reads."""
    module = importlib.import_module(f"{service}.settings")
    settings = getattr(module, f"{service.title()}Settings")
    return {name.upper() for name in settings.model_fields}


DOTTED_KEY = re.compile(r"[a-z][A-Za-z0-9]*(?:\.(?:\{[A-Za-z0-9,]+\}|[A-Za-z0-9_]+))+")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class ValuesIndex:
    """The umbrella's values (each service chart's defaults under its name) for key lookups."""

    def __init__(self) -> None:
        self.services = {
            service: yaml.safe_load((HELM / service / "values.yaml").read_text(encoding="utf-8"))
            for service in SERVICES
        }
        umbrella = yaml.safe_load((HELM / "fleet" / "values.yaml").read_text(encoding="utf-8"))
        self.umbrella = deep_merge(
            umbrella,
            {s: deep_merge(v, umbrella.get(s) or {}) for s, v in self.services.items()},
        )
        self.environment_variables = {service: settings_fields(service) for service in SERVICES}
        self.first_segments = set(self.umbrella) | {k for v in self.services.values() for k in v}

    def is_candidate(self, text: str) -> bool:
        """Whether an inline code span reads as a values key (`canary.steps`, `global.imageTag`)."""
        return (
            DOTTED_KEY.fullmatch(text) is not None
            and text.split(".", maxsplit=1)[0] in self.first_segments
            and text.rsplit(".", 1)[-1] not in FILE_EXTENSIONS
        )

    def _walk(self, tree: Any, segments: list[str], services: Iterable[str]) -> bool:
        for index, segment in enumerate(segments):
            parent = segments[index - 1] if index else ""
            if isinstance(tree, Mapping) and segment in tree:
                tree = tree[segment]
            elif parent == "config" and ENV_NAME.fullmatch(segment) and index == len(segments) - 1:
                return any(segment in self.environment_variables[s] for s in services)
            else:
                return False
        return True

    def problems(self, key: str) -> list[str]:
        expanded = [key]
        while any("{" in k for k in expanded):
            expanded = [
                k.replace(match[0], option, 1)
                for k in expanded
                if (match := re.search(r"\{([^}]*)\}", k))
                for option in match[1].split(",")
            ] + [k for k in expanded if "{" not in k]
        problems = []
        for one in expanded:
            segments = one.split(".")
            if segments[0] in self.umbrella:
                service = [segments[0]] if segments[0] in SERVICES else SERVICES
                found = self._walk(self.umbrella, segments, service)
            else:
                found = any(self._walk(v, segments, [s]) for s, v in self.services.items())
            if not found:
                problems.append(f"values key {one} does not exist in deploy/helm")
        return problems

    def values_of(self, key: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """`service -> value` of a per-service key with `overrides` (a values file) applied."""
        merged = deep_merge(self.umbrella, overrides)
        found = {}
        for service in SERVICES:
            tree: Any = merged[service]
            for segment in key.split("."):
                tree = tree.get(segment) if isinstance(tree, Mapping) else None
            found[service] = tree
        return found


@pytest.fixture(scope="module")
def values_index() -> ValuesIndex:
    return ValuesIndex()


@pytest.fixture(scope="module")
def target() -> DeployTarget:
    return deploy_target()


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, target: DeployTarget) -> dict[str, list[Doc]]:
    """The umbrella rendered with each environment's values file, as deploy.yml installs it."""
    charts = build_charts(tmp_path_factory.mktemp("helm"))
    with helm_python.Chart.load(charts / "fleet") as chart:
        return {
            environment: render_chart(
                chart,
                yaml.safe_load((HELM / "fleet" / f"values-{environment}.yaml").read_text()),
                release=target.release,
                namespace=target.namespace,
            )
            for environment in ENVIRONMENTS
        }


@pytest.fixture(scope="module")
def rollouts(renders: dict[str, list[Doc]]) -> set[str]:
    return {d["metadata"]["name"] for d in renders["production"] if d["kind"] == "Rollout"}


def data_documents() -> list[Doc]:
    """deploy/k8s/base as written (the overlays only resize it and name the environment)."""
    return [
        doc
        for path in sorted((ROOT / "deploy" / "k8s" / "base").glob("*.yaml"))
        for doc in load_documents(path.read_text(encoding="utf-8"))
        if doc["kind"] != "Kustomization"
    ]


@pytest.fixture(scope="module")
def resources(renders: dict[str, list[Doc]], target: DeployTarget) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of everything the releases and deploy/k8s/base create, with the
    Secrets the ExternalSecrets write."""
    found = set()
    docs = [(d, target.namespace) for r in renders.values() for d in r]
    docs += [(d, d["metadata"].get("namespace", "")) for d in data_documents()]
    for doc, namespace in docs:
        found.add((doc["kind"], namespace, doc["metadata"]["name"]))
        if doc["kind"] == "ExternalSecret":
            found.add(("Secret", namespace, doc["spec"]["target"]["name"]))
    return found


# --- the checks ---------------------------------------------------------------------------------

REPO_ROOTS = sorted(
    p.name
    for p in ROOT.iterdir()
    if p.is_dir() and (not p.name.startswith(".") or p.name == ".github")
)
REPO_PATH = re.compile(
    rf"(?<![\w.$/<>-])((?:{'|'.join(re.escape(r) for r in REPO_ROOTS)})/[\w.*<>/-]*)"
)


def path_problems(lines: Iterable[str]) -> list[str]:
    """Repository paths in `lines` that do not exist (`<svc>`, `<env>` stand for each value)."""
    problems = []
    for path in sorted({m.rstrip(".,:") for line in lines for m in REPO_PATH.findall(line)}):
        candidates = [path]
        for placeholder, values in PLACEHOLDERS.items():
            if placeholder in path:
                candidates = [c.replace(placeholder, v) for c in candidates for v in values]
        unknown = [c for c in candidates if re.search(r"<[^>]*>", c)]
        if unknown:
            problems.append(f"{path}: unknown placeholder")
            continue
        missing = [
            c for c in candidates if not (any(ROOT.glob(c)) if "*" in c else (ROOT / c).exists())
        ]
        problems += [f"{c}: no such file or directory" for c in missing]
    return problems


HELM_VALUE_OPTIONS = {
    "-n", "--namespace", "-f", "--values", "--set", "--set-string", "--set-file", "--timeout",
    "--version", "--revision", "-o", "--output", "--kube-context", "--kube-version",
}  # fmt: skip
HELM_RELEASE_COMMANDS = {"upgrade", "install", "template", "rollback", "history", "status",
                         "uninstall", "get"}  # fmt: skip


def helm_problems(words: list[str], target: DeployTarget, values: ValuesIndex) -> list[str]:
    """A helm command naming another release or namespace than deploy.yml's, a chart or values
    file that does not exist, or a `--set` key the charts do not have."""
    positional, options = split_options(words[1:], HELM_VALUE_OPTIONS)
    command = " ".join(words)
    problems = []
    if positional[:1] == ["get"]:  # helm get values|manifest|... RELEASE
        positional = ["get", *positional[2:]]
    if positional and positional[0] in HELM_RELEASE_COMMANDS:
        if positional[1:2] != [target.release]:
            problems.append(f"not release {target.release}: {command}")
        if namespace_of(options) != target.namespace:
            problems.append(f"not namespace {target.namespace}: {command}")
    if positional[:1] in (["upgrade"], ["install"], ["template"]):
        charts = positional[2:3]
    elif positional[:2] == ["dependency", "build"] or positional[:1] == ["lint"]:
        charts = positional[-1:]
    else:
        charts = []
    for chart in charts:
        if not chart.startswith("deploy/helm/") or not (ROOT / chart / "Chart.yaml").exists():
            problems.append(f"no chart {chart} in deploy/helm: {command}")
    for file in options.get("-f", []) + options.get("--values", []):
        if not (ROOT / file).is_file():
            problems.append(f"no values file {file}: {command}")
    for assignment in options.get("--set", []) + options.get("--set-string", []):
        problems += values.problems(assignment.split("=", 1)[0])
    return problems


ROLLOUTS_VALUE_OPTIONS = {"-n", "--namespace", "--timeout", "--context", "--kubeconfig"}
ROLLOUTS_NAMELESS = {"list", "dashboard", "version", "completion"}
ROLLOUTS_NAMED = {"status", "promote", "abort", "pause", "restart", "undo"}
ROLLOUTS_SUBRESOURCE = {"get": "rollout", "retry": "rollout", "set": "image"}


def rollouts_problems(words: list[str], target: DeployTarget, rollouts: set[str]) -> list[str]:
    """A `kubectl argo rollouts` command whose Rollout the production release does not have."""
    positional, options = split_options(words[3:], ROLLOUTS_VALUE_OPTIONS)
    command = " ".join(words)
    verb = positional[0] if positional else ""
    if verb in ROLLOUTS_NAMELESS:
        return []
    if verb in ROLLOUTS_NAMED:
        name = positional[1:2]
    elif verb in ROLLOUTS_SUBRESOURCE and positional[1:2] == [ROLLOUTS_SUBRESOURCE[verb]]:
        name = positional[2:3]
    else:
        return [f"not a kubectl argo rollouts command this check knows: {command}"]
    problems = []
    if not name or name[0] not in rollouts:
        problems.append(f"no Rollout {name[0] if name else '(none)'} in production: {command}")
    if namespace_of(options) != target.namespace:
        problems.append(f"not namespace {target.namespace}: {command}")
    return problems


KUBECTL_VALUE_OPTIONS = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "-c",
                         "--container", "--for", "--timeout", "--since", "--tail", "-f",
                         "--filename", "-k", "--kustomize", "--context"}  # fmt: skip


def resource_problems(words: list[str], known: set[tuple[str, str, str]]) -> list[str]:
    """`kind/name` arguments of a kubectl command, in a namespace of the repository's, that
    nothing in the repository creates."""
    positional, options = split_options(words[1:], KUBECTL_VALUE_OPTIONS)
    namespace = namespace_of(options)
    if namespace not in OWN_NAMESPACES:
        return []
    problems = []
    for word in positional:
        kind_alias, slash, name = word.partition("/")
        if not slash or "=" in word or "$" in word:
            continue
        kind = KIND_ALIASES.get(kind_alias.lower())
        if kind is None:
            problems.append(f"unknown kind {kind_alias}: {' '.join(words)}")
        elif (kind, namespace, name) not in known:
            problems.append(f"no {kind} {name} in namespace {namespace}: {' '.join(words)}")
    return problems


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w-]+):", makefile, re.M))


def values_keys_in(markdown: str, values: ValuesIndex) -> list[str]:
    """Values keys the guide names: inline (`canary.steps`) and in values snippets (YAML blocks
    whose top-level keys are the umbrella's)."""
    keys = [span for span in code_spans(prose(markdown)) if values.is_candidate(span)]
    for info, body in fenced_blocks(markdown):
        snippet = yaml.safe_load(body) if info == "yaml" else None
        if isinstance(snippet, dict) and set(snippet) <= set(values.umbrella):
            keys += [".".join(path) for path in leaf_paths(snippet)]
    return keys


def leaf_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key))


def setting_problems(markdown: str, values: ValuesIndex) -> list[str]:
    """Table rows `| `key` | `value` | ...` whose value is not every service's production value."""
    production = yaml.safe_load((HELM / "fleet" / "values-production.yaml").read_text())
    problems = []
    for table in tables(markdown):
        for row in table:
            key, value = code_spans(row[0]), code_spans(row[1]) if len(row) > 1 else []
            if len(key) != 1 or len(value) != 1 or not values.is_candidate(key[0]):
                continue
            actual = values.values_of(key[0], production)
            wrong = {s: v for s, v in actual.items() if str(v) != value[0]}
            if wrong:
                problems.append(f"{key[0]} is `{value[0]}` in the guide, {wrong} in the charts")
    return problems


# --- secrets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretEntry:
    properties: frozenset[str]
    external_secrets: frozenset[str]


def guide_secret_entries(markdown: str) -> dict[str, SecretEntry]:
    """The rows of the guide's secret store table: remote key -> properties, ExternalSecrets."""
    entries = {}
    for table in tables(markdown):
        for row in table:
            key = code_spans(row[0])
            if len(row) >= 3 and key and key[0].startswith("fleet/"):
                entries[key[0]] = SecretEntry(
                    frozenset(code_spans(row[1])), frozenset(code_spans(row[2]))
                )
    return entries


def chart_secret_entries(renders: Mapping[str, list[Doc]]) -> dict[str, SecretEntry]:
    """What the releases' ExternalSecrets read; every property of a service's own entry is an
    environment variable, the same the development Secret `<svc>-env` holds."""
    dev = {
        doc["metadata"]["name"]: frozenset(doc.get("stringData", {}))
        for doc in load_documents(DEV_SECRETS.read_text(encoding="utf-8"))
    }
    readers: dict[str, set[str]] = {}
    owners: dict[str, str] = {}
    per_environment: dict[str, set[str]] = {}
    for environment, docs in renders.items():
        for doc in docs:
            if doc["kind"] != "ExternalSecret":
                continue
            key = doc["spec"]["dataFrom"][0]["extract"]["key"].replace(
                f"fleet/{environment}/", "fleet/<env>/", 1
            )
            per_environment.setdefault(environment, set()).add(key)
            readers.setdefault(key, set()).add(doc["metadata"]["name"])
            owners[key] = doc["metadata"]["labels"]["app.kubernetes.io/name"]
    assert len({frozenset(keys) for keys in per_environment.values()}) == 1, per_environment
    entries = {}
    for key, names in readers.items():
        environment_entry = f"{owners[key]}-env"
        properties = (
            dev[environment_entry]
            if environment_entry in names
            else frozenset(MOUNT_PROPERTIES[key.rsplit("/", 1)[-1]])
        )
        entries[key] = SecretEntry(properties, frozenset(names))
    return entries


def data_secret_entries() -> dict[str, SecretEntry]:
    """What deploy/k8s's ExternalSecrets read (the overlays fill in the environment)."""
    properties: dict[str, set[str]] = {}
    readers: dict[str, set[str]] = {}
    for doc in load_documents(DATA_SECRETS.read_text(encoding="utf-8")):
        for item in doc["spec"]["data"]:
            key = item["remoteRef"]["key"].replace("/ENVIRONMENT/", "/<env>/", 1)
            properties.setdefault(key, set()).add(item["remoteRef"]["property"])
            readers.setdefault(key, set()).add(doc["metadata"]["name"])
    return {k: SecretEntry(frozenset(v), frozenset(readers[k])) for k, v in properties.items()}


def secret_problems(
    guide: Mapping[str, SecretEntry], actual: Mapping[str, SecretEntry]
) -> list[str]:
    problems = [
        f"{k}: in the guide, read by no ExternalSecret"
        for k in sorted(guide.keys() - actual.keys())
    ]
    problems += [
        f"{k}: read by an ExternalSecret, missing in the guide"
        for k in sorted(actual.keys() - guide.keys())
    ]
    for key in sorted(guide.keys() & actual.keys()):
        listed, real = guide[key], actual[key]
        if listed.properties != real.properties:
            problems.append(
                f"{key}: properties {sorted(listed.properties)}, expected {sorted(real.properties)}"
            )
        if listed.external_secrets != real.external_secrets:
            problems.append(
                f"{key}: ExternalSecrets {sorted(listed.external_secrets)}, "
                f"expected {sorted(real.external_secrets)}"
            )
    return problems


# --- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_relative_link_in_the_docs_resolves(path: Path) -> None:
    assert link_problems(path, path.read_text(encoding="utf-8")) == []


def test_a_broken_link_or_anchor_is_reported() -> None:
    markdown = (
        "# Title\n\nSee [the runbook](runbooks/rollback.md#by-hand), [gone](runbooks/gone.md),\n"
        "[a wrong anchor](runbooks/rollback.md#by-foot), [here](#title), [nowhere](#nowhere),\n"
        "[the web](https://example.com/x.md) and `[code](not/a/link.md)`.\n"
    )
    assert link_problems(GUIDE, markdown) == [
        "runbooks/gone.md: no such file",
        "runbooks/rollback.md#by-foot: no heading #by-foot in rollback.md",
        "#nowhere: no heading #nowhere in deploy.md",
    ]


def test_anchors_follow_githubs_rules() -> None:
    markdown = (
        "## 9. Rolling back\n## `helm` & Co.\n## Again\n## Again\n```\n# not a heading\n```\n"
    )
    assert anchors(markdown) == {"9-rolling-back", "helm--co", "again", "again-1"}


# --- paths and commands of the guide ------------------------------------------------------------


def test_every_repository_path_in_the_guide_exists(guide: str) -> None:
    lines = guide_lines(guide)
    assert any("deploy/helm/gateway" in line for line in lines)  # loops are unrolled
    assert path_problems(lines) == []


def test_images_built_by_hand_get_each_services_build_arguments(guide: str) -> None:
    builds = [
        shlex.split(line) for line in guide_lines(guide) if line.startswith("docker buildx build ")
    ]
    assert builds
    for words in builds:
        assert words[words.index("-f") + 1] == str(DOCKERFILE.relative_to(ROOT))
        build_args = [
            words[i + 1].partition("=")[0] for i, w in enumerate(words) if w == "--build-arg"
        ]
        assert build_args == ["SERVICE", "PORT"]
    # `for image in <svc>:<port> ...`: every service, each with the port its image exposes.
    loop = re.search(r"^for image in (.+); do$", guide, re.MULTILINE)
    assert loop, "the hand-built images are no longer one loop over <svc>:<port>"
    pairs = dict(word.split(":") for word in loop[1].split())
    assert pairs == {s: image_build_args(s)["PORT"] for s in SERVICES}


def test_a_missing_path_or_unknown_placeholder_is_reported() -> None:
    markdown = (
        "Charts in `deploy/helm/<svc>/values.yaml`, `deploy/helm/fleet/values-<env>.yaml`,\n"
        "`deploy/helm/fleet/values-qa.yaml` and `services/<service>/pyproject.toml`.\n\n"
        "```sh\nfor svc in gateway billing; do\n  cat services/$svc/pyproject.toml\n"
        "done\n```\n"
    )
    assert path_problems(guide_lines(markdown)) == [
        "deploy/helm/fleet/values-qa.yaml: no such file or directory",
        "services/<service>/pyproject.toml: unknown placeholder",
        "services/billing/pyproject.toml: no such file or directory",
    ]


def test_helm_commands_use_the_charts_values_files_and_release_of_deploy_yml(
    guide: str, target: DeployTarget, values_index: ValuesIndex
) -> None:
    helm = [words for words in commands(guide) if words[0] == "helm"]
    assert any(words[1:3] == ["dependency", "build"] for words in helm)
    problems = [p for words in helm for p in helm_problems(words, target, values_index)]
    assert problems == []


def test_the_guides_helm_upgrades_are_the_ones_deploy_yml_runs(
    guide: str, target: DeployTarget
) -> None:
    upgrades = {tuple(w) for w in commands(guide) if w[:2] == ["helm", "upgrade"]}
    # Both environments' commands, word for word; nothing CI would not run.
    assert upgrades == set(target.upgrades)
    assert {f"deploy/helm/fleet/values-{e}.yaml" for e in ENVIRONMENTS} <= {
        word for words in upgrades for word in words
    }


def test_a_helm_command_off_the_deployment_is_reported(
    target: DeployTarget, values_index: ValuesIndex
) -> None:
    markdown = (
        "```sh\nhelm upgrade --install fleet-prod deploy/helm/fleet -n default \\\n"
        "  -f deploy/helm/fleet/values-prod.yaml \\\n"
        "  --set global.imageTags=x --set orders.canary.enabled=false\n"
        "helm dependency build deploy/helm/billing\n```\n"
    )
    problems = [p for w in commands(markdown) for p in helm_problems(w, target, values_index)]
    assert problems == [
        f"not release fleet: {' '.join(commands(markdown)[0])}",
        f"not namespace fleet: {' '.join(commands(markdown)[0])}",
        f"no values file deploy/helm/fleet/values-prod.yaml: {' '.join(commands(markdown)[0])}",
        "values key global.imageTags does not exist in deploy/helm",
        "no chart deploy/helm/billing in deploy/helm: helm dependency build deploy/helm/billing",
    ]


def test_rollouts_commands_target_rollouts_of_the_production_release(
    guide: str, target: DeployTarget, rollouts: set[str]
) -> None:
    argo = [w for w in commands(guide) if w[:3] == ["kubectl", "argo", "rollouts"]]
    targeted = {w[w.index("rollout") + 1] for w in argo if "rollout" in w[3:5]}
    assert {"orders"} <= targeted
    assert rollouts == set(SERVICES)
    assert [p for w in argo for p in rollouts_problems(w, target, rollouts)] == []


def test_a_rollout_the_release_does_not_have_is_reported(
    target: DeployTarget, rollouts: set[str]
) -> None:
    markdown = (
        "```sh\nkubectl argo rollouts get rollout fleet-orders -n fleet --watch\n"
        "kubectl argo rollouts promote orders -n default\nkubectl argo rollouts frobnicate orders\n"
        "```\nInline: `kubectl argo rollouts abort <svc> -n fleet`.\n"
    )
    problems = [p for w in commands(markdown) for p in rollouts_problems(w, target, rollouts)]
    assert problems == [
        "no Rollout fleet-orders in production: "
        "kubectl argo rollouts get rollout fleet-orders -n fleet --watch",
        "not namespace fleet: kubectl argo rollouts promote orders -n default",
        "not a kubectl argo rollouts command this check knows: "
        "kubectl argo rollouts frobnicate orders",
        "no Rollout <svc> in production: kubectl argo rollouts abort <svc> -n fleet",
    ]


def test_resources_named_in_kubectl_commands_exist(
    guide: str, resources: set[tuple[str, str, str]]
) -> None:
    kubectl = [w for w in commands(guide) if w[0] == "kubectl" and w[1:3] != ["argo", "rollouts"]]
    assert any("cluster.postgresql.cnpg.io/fleet-db" in w for w in kubectl)
    assert [p for w in kubectl for p in resource_problems(w, resources)] == []


def test_a_resource_nothing_creates_is_reported(resources: set[tuple[str, str, str]]) -> None:
    markdown = (
        "```sh\nkubectl logs -n fleet job/orders-migrate\n"
        "kubectl rollout status -n fleet-data statefulset/redis\n"
        "kubectl port-forward -n fleet daemonset/gateway 8000\n"
        "kubectl port-forward -n monitoring service/anything 9090\n```\n"
    )
    problems = [p for w in commands(markdown) for p in resource_problems(w, resources)]
    assert problems == [
        "no Job orders-migrate in namespace fleet: kubectl logs -n fleet job/orders-migrate",
        "no StatefulSet redis in namespace fleet-data: "
        "kubectl rollout status -n fleet-data statefulset/redis",
        "unknown kind daemonset: kubectl port-forward -n fleet daemonset/gateway 8000",
    ]


def test_make_targets_in_the_guide_exist(guide: str) -> None:
    named = {w[1] for w in commands(guide) if w[0] == "make"}
    assert "migrations-check" in named
    assert named <= make_targets()


# --- values -------------------------------------------------------------------------------------


def test_values_keys_in_the_guide_exist_in_the_charts(
    guide: str, values_index: ValuesIndex
) -> None:
    keys = values_keys_in(guide, values_index)
    assert {
        "global.imageTag",
        "canary.analysis.failureLimit",
        "gateway.config.TRUSTED_PROXIES",
    } <= set(keys)
    assert [p for key in keys for p in values_index.problems(key)] == []


def test_a_misspelt_values_key_is_reported(values_index: ValuesIndex) -> None:
    markdown = (
        "Set `canary.analysis.failureLimt`, `orders.ingress.host`, `image.{repository,tags}`,\n"
        "`auth.config.FLEET_ADMIN_EMAIL` and `auth.config.NOT_A_SETTING`; not `fleet.events`.\n\n"
        "```yaml\ngateway:\n  ingress:\n    hostname: api.example.com\n```\n"
    )
    keys = values_keys_in(markdown, values_index)
    assert [p for key in keys for p in values_index.problems(key)] == [
        "values key canary.analysis.failureLimt does not exist in deploy/helm",
        "values key orders.ingress.host does not exist in deploy/helm",
        "values key image.tags does not exist in deploy/helm",
        "values key auth.config.NOT_A_SETTING does not exist in deploy/helm",
        "values key gateway.ingress.hostname does not exist in deploy/helm",
    ]


def test_settings_the_guide_quotes_are_the_production_values(
    guide: str, values_index: ValuesIndex
) -> None:
    assert setting_problems(guide, values_index) == []
    stale = "| key | value |\n|---|---|\n| `canary.analysis.failureLimit` | `3` |\n"
    assert setting_problems(stale, values_index) == [
        "canary.analysis.failureLimit is `3` in the guide, "
        f"{dict.fromkeys(SERVICES, 1)} in the charts"
    ]


# --- secrets ------------------------------------------------------------------------------------


def test_the_secret_store_table_is_what_the_external_secrets_read(
    guide: str, renders: dict[str, list[Doc]]
) -> None:
    listed = guide_secret_entries(guide)
    actual = chart_secret_entries(renders) | data_secret_entries()
    assert "fleet/<env>/auth/jwt-keys" in listed
    assert secret_problems(listed, actual) == []


def test_every_service_secret_is_a_setting_of_that_service(guide: str) -> None:
    listed = guide_secret_entries(guide)
    for service in SERVICES:
        properties = listed[f"fleet/<env>/{service}"].properties
        assert properties
        assert properties <= settings_fields(service), service


def test_a_wrong_secret_key_or_property_is_reported(renders: dict[str, list[Doc]]) -> None:
    listed = guide_secret_entries(GUIDE.read_text(encoding="utf-8"))
    worker = listed["fleet/<env>/worker"]
    listed["fleet/<env>/worker"] = SecretEntry(
        worker.properties - {"SMTP_URL"} | {"SMTP_URI"}, worker.external_secrets
    )
    listed["fleet/<env>/cache"] = listed.pop("fleet/<env>/redis")
    actual = chart_secret_entries(renders) | data_secret_entries()
    assert secret_problems(listed, actual) == [
        "fleet/<env>/cache: in the guide, read by no ExternalSecret",
        "fleet/<env>/redis: read by an ExternalSecret, missing in the guide",
        "fleet/<env>/worker: properties ['AMQP_URL', 'DATABASE_URL', 'S3_ACCESS_KEY_ID', "
        "'S3_SECRET_ACCESS_KEY', 'SMTP_URI'], expected ['AMQP_URL', 'DATABASE_URL', "
        "'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'SMTP_URL']",
    ]


def test_the_connection_urls_are_the_ones_deploy_k8s_documents(guide: str) -> None:
    documented = (ROOT / "deploy" / "k8s" / "README.md").read_text(encoding="utf-8")
    endpoints = set(re.findall(r"@([\w.-]+\.fleet-data\.svc:\d+)", guide))
    assert len(endpoints) == 3
    assert {e for e in endpoints if e not in documented} == set()


# --- the canary ---------------------------------------------------------------------------------


def step_text(step: Mapping[str, Any]) -> str:
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    return f"pause: {{duration: {step['pause']['duration']}}}"


def test_the_canary_steps_in_the_guide_are_the_rendered_ones(
    guide: str, renders: dict[str, list[Doc]]
) -> None:
    rendered = {
        doc["metadata"]["name"]: [step_text(s) for s in doc["spec"]["strategy"]["canary"]["steps"]]
        for doc in renders["production"]
        if doc["kind"] == "Rollout"
    }
    described = [
        span
        for table in tables(guide)
        for row in table
        for span in code_spans(" ".join(row))
        if span.startswith(("setWeight:", "pause:"))
    ]
    assert described
    assert all(steps == described for steps in rendered.values()), rendered


def test_the_thresholds_in_the_guide_are_the_analysis_templates(
    guide: str, renders: dict[str, list[Doc]]
) -> None:
    rendered = {}
    for doc in renders["production"]:
        if doc["kind"] == "AnalysisTemplate":
            conditions = {m["name"]: m["successCondition"] for m in doc["spec"]["metrics"]}
            rate = re.search(r"result\[0\] >= ([\d.]+)", conditions["success-rate"])
            latency = re.search(r"result\[0\] <= ([\d.]+)", conditions["p95-latency"])
            assert rate is not None
            assert latency is not None
            name = doc["metadata"]["name"].removesuffix("-canary")
            rendered[name] = (float(rate[1]), float(latency[1]))
    described = {
        code_spans(row[0])[0]: (float(row[1]), float(row[2]))
        for table in tables(guide)
        for row in table
        if len(row) == 3 and code_spans(row[0]) and code_spans(row[0])[0] in SERVICES
    }
    assert described == rendered


# --- versions, dashboards, manifests ------------------------------------------------------------


def test_the_tool_versions_are_the_ones_deploy_yml_pins(guide: str) -> None:
    pins = yaml.safe_load(DEPLOY_WORKFLOW.read_text(encoding="utf-8"))["env"]
    for name in (
        "HELM_VERSION",
        "KUBECTL_VERSION",
        "ARGO_ROLLOUTS_VERSION",
        "ARGO_ROLLOUTS_SHA256",
    ):
        assert pins[name] in guide, name
    assert f"/releases/download/{pins['ARGO_ROLLOUTS_VERSION']}/" in guide


def test_the_dashboards_the_guide_names_exist(guide: str) -> None:
    dashboards = ROOT / "deploy" / "k8s" / "monitoring" / "dashboards"
    titles = {
        yaml.safe_load(path.read_text(encoding="utf-8"))["title"]
        for path in dashboards.glob("*.json")
    }
    named = set(re.findall(r"\*\*(Fleet / [\w ]+)\*\*", " ".join(guide.split())))
    assert "Fleet / overview" in named
    assert named <= titles


def test_the_manifests_in_the_guide_are_valid(guide: str) -> None:
    manifests = [
        doc
        for info, body in fenced_blocks(guide)
        if info == "yaml"
        for doc in load_documents(body)
        if "apiVersion" in doc
        # No schema of cert-manager's CRDs among the deploy tools: its ClusterIssuer is an example.
        and not str(doc["apiVersion"]).startswith("cert-manager.io/")
    ]
    assert [d["kind"] for d in manifests] == ["ClusterSecretStore"]
    assert manifests[0]["metadata"]["name"] == "fleet-secrets"
    assert validate_manifests(manifests) == []
