"""What the tests of CI's kind cluster share: the values files the `kind` job of
.github/workflows/ci.yml installs the umbrella chart with, layered as Helm layers them, and the
secret store generator of deploy/ci (a script, not a package: loaded from its path)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
UMBRELLA = ROOT / "deploy" / "helm" / "fleet"
KIND_DIR = ROOT / "deploy" / "ci" / "kind"
KIND_SECRETS = ROOT / "deploy" / "ci" / "kind_secrets.py"

# What CI's kind job passes to `helm upgrade --install`, in `-f` order: staging's values, then
# the kind cluster's.
KIND_VALUES = ("values-staging.yaml", "values-kind.yaml")


def merged(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """`layer` on top of `base` as Helm layers `-f` files: maps merge key by key, anything else
    (lists included) is replaced."""
    result = copy.deepcopy(dict(base))
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def layered_values(*names: str) -> dict[str, Any]:
    """The values of several files of the umbrella chart, in `-f` order."""
    values: dict[str, Any] = {}
    for name in names:
        values = merged(values, yaml.safe_load((UMBRELLA / name).read_text(encoding="utf-8")))
    return values


def kind_secrets() -> ModuleType:
    """deploy/ci/kind_secrets.py as a module."""
    name = "fleet_ci_kind_secrets"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, KIND_SECRETS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
