"""Service ownership: `.github/CODEOWNERS` names an owner team for every directory, and each
service chart stamps the same team on every object it renders (label `fleet.example.com/team`)
with the runbook on-call opens first on its workload and pods (annotation
`fleet.example.com/runbook`), a runbook that exists and is that service's."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from deploy_support import ROOT, build_charts, describe, render_chart

from fleet_slo.rules import RUNBOOK_BASE_URL

SERVICES = ("gateway", "auth", "catalog", "orders", "worker")
CODEOWNERS = ROOT / ".github" / "CODEOWNERS"
RUNBOOKS = ROOT / "docs" / "runbooks"
TEAM_LABEL = "fleet.example.com/team"
RUNBOOK_ANNOTATION = "fleet.example.com/runbook"
WORKLOAD_KINDS = ("Deployment", "Rollout")
TEAM_HANDLE = re.compile(r"^@fleet/([a-z0-9-]+)$")

Doc = dict[str, Any]


# --- CODEOWNERS -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    owners: tuple[str, ...]

    def matches(self, path: str) -> bool:
        return _pattern_regex(self.pattern).fullmatch(path) is not None


@cache
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A CODEOWNERS pattern (gitignore syntax, the subset GitHub supports) as a regex on paths:
    `/` at the start anchors it at the root, `/` at the end means everything below a directory,
    `*` is any run of characters within one path segment."""
    if pattern == "*":
        return re.compile(".*")
    anchored = pattern.startswith("/")
    body = pattern.strip("/")
    regex = "".join("[^/]*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", body))
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(
        f"{prefix}{regex}/.*" if pattern.endswith("/") else f"{prefix}{regex}(?:/.*)?"
    )


def parse_codeowners(text: str) -> list[Rule]:
    rules = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            rules.append(Rule(fields[0], tuple(fields[1:])))
    return rules


def owners_of(rules: list[Rule], path: str) -> tuple[str, ...]:
    """The owners GitHub requests a review from for `path`: the last matching rule's."""
    for rule in reversed(rules):
        if rule.matches(path):
            return rule.owners
    return ()


def documented_teams(text: str) -> set[str]:
    """The `@fleet/<team>` handles the file's header comment describes."""
    header = [line for line in text.splitlines() if line.startswith("#")]
    return set(re.findall(r"^#\s+(@fleet/[a-z0-9-]+)\s", "\n".join(header), re.M))


@cache
def tracked_files() -> tuple[str, ...]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return tuple(listed.splitlines())


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return parse_codeowners(CODEOWNERS.read_text(encoding="utf-8"))


def test_every_rule_names_documented_teams_and_matches_files(rules: list[Rule]) -> None:
    teams = documented_teams(CODEOWNERS.read_text(encoding="utf-8"))
    used = {owner for rule in rules for owner in rule.owners}
    assert used == teams, f"teams used but not described: {used - teams}, unused: {teams - used}"
    assert all(TEAM_HANDLE.match(team) for team in teams), teams
    files = tracked_files()
    stale = [rule.pattern for rule in rules if not any(rule.matches(path) for path in files)]
    assert not stale, f"CODEOWNERS rules matching no file: {stale}"
    assert all(rule.owners for rule in rules), "a rule without owners removes ownership"


def test_every_file_has_exactly_one_owner_team(rules: list[Rule]) -> None:
    unowned = [path for path in tracked_files() if len(owners_of(rules, path)) != 1]
    assert not unowned, unowned[:10]


def test_the_owner_matcher_follows_the_last_matching_rule() -> None:
    rules = parse_codeowners(
        "* @fleet/platform\n/deploy/ @fleet/platform  # all of it\n"
        "/deploy/helm/orders/ @fleet/orders\n/contracts/schemas/order.* @fleet/orders\n"
    )
    assert owners_of(rules, "deploy/helm/orders/values.yaml") == ("@fleet/orders",)
    assert owners_of(rules, "deploy/helm/ordersx/values.yaml") == ("@fleet/platform",)
    assert owners_of(rules, "contracts/schemas/order.placed.v1.json") == ("@fleet/orders",)
    assert owners_of(rules, "contracts/schemas/stock.reserved.v1.json") == ("@fleet/platform",)
    assert owners_of(rules, "services/orders/deploy/helm/orders/x") == ("@fleet/platform",)


# --- the charts -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_charts(tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def rendered(charts: Path) -> dict[str, list[Doc]]:
    """Each service chart installed on its own, with its defaults."""
    docs = {}
    for service in SERVICES:
        with helm_python.Chart.load(charts / service) as chart:
            docs[service] = render_chart(chart, release=service, namespace="fleet")
    return docs


def ownership(service: str) -> dict[str, str]:
    values = yaml.safe_load((ROOT / "deploy" / "helm" / service / "values.yaml").read_text())
    owned: dict[str, str] = values["ownership"]
    return owned


def _pod_templates(doc: Doc) -> Iterator[Doc]:
    template = doc.get("spec", {}).get("template")
    if doc["kind"] in (*WORKLOAD_KINDS, "Job") and template is not None:
        yield template


def ownership_problems(docs: list[Doc], *, team: str, runbook: str) -> list[str]:
    """Every object without the team label, every workload or pod without the runbook."""
    problems = []
    for doc in docs:
        if doc["metadata"].get("labels", {}).get(TEAM_LABEL) != team:
            problems.append(f"{describe(doc)}: no label {TEAM_LABEL}={team}")
        if doc["kind"] in WORKLOAD_KINDS:
            annotations = doc["metadata"].get("annotations", {})
            if annotations.get(RUNBOOK_ANNOTATION) != runbook:
                problems.append(f"{describe(doc)}: no annotation {RUNBOOK_ANNOTATION}")
        for pod in _pod_templates(doc):
            if pod["metadata"].get("labels", {}).get(TEAM_LABEL) != team:
                problems.append(f"{describe(doc)} pods: no label {TEAM_LABEL}={team}")
            if pod["metadata"].get("annotations", {}).get(RUNBOOK_ANNOTATION) != runbook:
                problems.append(f"{describe(doc)} pods: no annotation {RUNBOOK_ANNOTATION}")
    return problems


@pytest.mark.parametrize("service", SERVICES)
def test_every_object_of_a_chart_carries_its_team_and_the_workloads_its_runbook(
    rendered: dict[str, list[Doc]], service: str
) -> None:
    owner = ownership(service)
    docs = rendered[service]
    assert any(doc["kind"] in WORKLOAD_KINDS for doc in docs)
    assert not ownership_problems(docs, team=owner["team"], runbook=owner["runbook"])


def test_ownership_check_catches_a_missing_label_or_runbook(
    rendered: dict[str, list[Doc]],
) -> None:
    owner = ownership("orders")
    docs = [dict(doc) for doc in rendered["orders"]]
    workload = next(i for i, doc in enumerate(docs) if doc["kind"] in WORKLOAD_KINDS)
    stripped = {**docs[workload], "metadata": {"name": "orders", "labels": {}}}
    problems = ownership_problems([*docs[:workload], stripped, *docs[workload + 1 :]], **owner)
    assert problems == [
        f"{describe(stripped)}: no label {TEAM_LABEL}={owner['team']}",
        f"{describe(stripped)}: no annotation {RUNBOOK_ANNOTATION}",
    ]
    assert ownership_problems(docs, team="someone-else", runbook=owner["runbook"])


@pytest.mark.parametrize("service", SERVICES)
def test_a_charts_team_owns_the_service_and_the_chart_in_codeowners(
    rules: list[Rule], service: str
) -> None:
    handle = f"@fleet/{ownership(service)['team']}"
    for directory in (f"services/{service}/", f"deploy/helm/{service}/"):
        files = [path for path in tracked_files() if path.startswith(directory)]
        assert files, directory
        owners = {owners_of(rules, path) for path in files}
        assert owners == {(handle,)}, f"{directory} is owned by {owners}, the chart says {handle}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_charts_runbook_is_a_paging_runbook_of_that_service(service: str) -> None:
    url = ownership(service)["runbook"]
    assert url.startswith(f"{RUNBOOK_BASE_URL}/"), url
    runbook = RUNBOOKS / url.removeprefix(f"{RUNBOOK_BASE_URL}/")
    assert runbook.is_file(), f"{service}'s runbook {url} is not in docs/runbooks"
    text = runbook.read_text(encoding="utf-8")
    assert f"| Service | `{service}`" in text, f"{runbook.name} is not {service}'s"
    assert "| Severity | `page` |" in text, (
        f"{runbook.name} does not page: on-call starts elsewhere"
    )
