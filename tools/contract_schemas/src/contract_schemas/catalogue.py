"""The committed schema files against the code: breaking changes and files out of date."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from contract_schemas.compatibility import SchemaError, Violation, breaking_changes
from contract_schemas.documents import Schema, file_name, render

DROPPED = "committed schema has no model in the registry (event type dropped or renamed)"


@dataclass(frozen=True)
class Report:
    breaking: list[Violation] = field(default_factory=list)
    """Changes that break consumers of a committed schema (incl. a dropped event type)."""
    outdated: list[str] = field(default_factory=list)
    """Compatible differences, `<file>: <why>`: what `export` would write without objection."""

    @property
    def ok(self) -> bool:
        return not self.breaking and not self.outdated


def compare_catalogue(committed: Mapping[str, str], current: Mapping[str, Schema]) -> Report:
    """Compare the committed texts (by document name) with the documents the code defines."""
    report = Report()
    for name, text in sorted(committed.items()):
        if name not in current:
            report.breaking.append(Violation(name, "", DROPPED))
            continue
        try:
            published = json.loads(text)
            report.breaking.extend(breaking_changes(published, current[name], schema=name))
        except (ValueError, SchemaError) as exc:  # JSONDecodeError is a ValueError
            report.breaking.append(Violation(name, "", f"committed schema is unreadable: {exc}"))
    broken = {violation.schema for violation in report.breaking}
    for name, document in sorted(current.items()):
        if name in broken:
            continue
        if name not in committed:
            report.outdated.append(f"{file_name(name)}: new, not exported yet")
        elif committed[name] != render(document):
            report.outdated.append(f"{file_name(name)}: differs from the model")
    return report
