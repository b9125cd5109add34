"""The Helm charts of deploy/helm, built and rendered with Helm's own SDK (helm-python-sdk).

One way to render them, for the deploy tests and for `make up-containers` alike: a copy of
deploy/helm with every chart's local dependencies built (`charts/` and `Chart.lock` are never
committed), then `Chart.render(values)` of the umbrella chart into its documents.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fleetctl.stack import ROOT

HELM = ROOT / "deploy" / "helm"
UMBRELLA = HELM / "fleet"


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a multi-document string."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def build_charts(destination: Path) -> Path:
    """A copy of deploy/helm in `destination` with every chart's dependencies built."""
    import helm_python  # noqa: PLC0415 - the Helm SDK loads a native library: only when rendering

    shutil.copytree(
        HELM,
        destination,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("charts", "Chart.lock", "__pycache__", "*.py"),
    )
    umbrella = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text(encoding="utf-8"))
    for dependency in umbrella["dependencies"]:
        helm_python.dependency_build(destination / dependency["name"])
    helm_python.dependency_build(destination / "fleet")
    return destination


def render_chart(
    chart: Any, values: Mapping[str, Any] | None = None, *, release: str, namespace: str
) -> list[dict[str, Any]]:
    """Every document a loaded `helm_python.Chart` renders with `values`, in a stable order."""
    rendered = chart.render(dict(values or {}), name=release, namespace=namespace)
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in load_documents(text)
    ]


def render_fleet(
    charts: Path, values: Mapping[str, Any], *, release: str = "fleet", namespace: str = "fleet"
) -> list[dict[str, Any]]:
    """The umbrella chart of `charts` (a `build_charts` copy) rendered with `values`."""
    import helm_python  # noqa: PLC0415

    return render_chart(
        helm_python.Chart.load(str(charts / "fleet")), values, release=release, namespace=namespace
    )


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` layered on `base` as Helm layers values files: maps merge, the rest replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = value
    return merged
