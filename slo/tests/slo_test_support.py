"""Shared helpers of the SLO tests: where the repository is, the generated rules, their PromQL."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fleet_slo.generate import RUNBOOKS_DIR
from fleet_slo.runbooks import DEFINITIONS_DIR, RULES_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / RULES_DIR
RUNBOOKS = REPO_ROOT / RUNBOOKS_DIR
DEFINITIONS = REPO_ROOT / DEFINITIONS_DIR


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*-slo.yaml"))


def manifests() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in rule_files()]


def service_alert_manifests() -> list[dict[str, Any]]:
    """The PrometheusRules of the services' alerts on other signals than SLOs."""
    paths = sorted(RULES.glob("*-alerts.yaml"))
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths]


def every_manifest() -> list[dict[str, Any]]:
    """Every committed PrometheusRule, in the order a rules file holds their groups."""
    paths = sorted(RULES.glob("*.yaml"))
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths]


def all_rules() -> Iterator[dict[str, Any]]:
    for manifest in manifests():
        for group in manifest["spec"]["groups"]:
            yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in all_rules() if "alert" in rule]


def recordings() -> list[dict[str, Any]]:
    return [rule for rule in all_rules() if "record" in rule]


def promtool() -> str:
    """The promtool `make deploy-tools` unpacks into the virtual environment (or one on PATH)."""
    found = shutil.which("promtool", path=f"{Path(sys.executable).parent}{os.pathsep}{os.defpath}")
    found = found or shutil.which("promtool")
    assert found, "promtool is missing: run `make deploy-tools` (Debian package `prometheus`)"
    return found
