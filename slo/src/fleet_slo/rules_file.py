"""The SLO rules as Prometheus itself loads them: one rules file whose `groups:` are the groups of
every committed PrometheusRule (`spec.groups`), for a Prometheus run without the operator
(`fleetctl observe`, the tests that query a real one).

It is read from the committed manifests in `deploy/k8s/monitoring/rules`, not generated again, so
a local Prometheus evaluates exactly the rules a cluster gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fleet_slo.generate import yaml_text

PROMETHEUS_RULE = "PrometheusRule"


class RulesFileError(ValueError):
    """The manifests cannot make one rules file (none found, a group name used twice)."""


def rule_groups(rules_dir: Path) -> list[dict[str, Any]]:
    """The `spec.groups` of every PrometheusRule in `rules_dir` (`*.yaml`), in file order."""
    groups: list[dict[str, Any]] = []
    for path in sorted(rules_dir.glob("*.yaml")):
        for manifest in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(manifest, dict) and manifest.get("kind") == PROMETHEUS_RULE:
                groups.extend(manifest["spec"]["groups"])
    if not groups:
        raise RulesFileError(f"no {PROMETHEUS_RULE} with rule groups in {rules_dir}")
    names = [str(group["name"]) for group in groups]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RulesFileError(f"rule groups named more than once in {rules_dir}: {repeated}")
    return groups


def write_rules_file(rules_dir: Path, path: Path) -> Path:
    """Write the groups of every PrometheusRule in `rules_dir` to `path` as a Prometheus rules
    file (what `rule_files:` of prometheus.yml and `promtool check rules` read)."""
    header = (
        f"# The groups of every {PROMETHEUS_RULE} in {rules_dir}, written by "
        "`python -m fleet_slo rules-file`; edit the SLO definitions, not this file.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml_text({"groups": rule_groups(rules_dir)}), encoding="utf-8")
    return path
