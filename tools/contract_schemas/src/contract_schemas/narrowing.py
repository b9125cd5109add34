"""The keywords of one schema node that narrow what it accepts: format, values, bounds.

Both nodes accept the same JSON type (or the new one a wider type); each function yields what the
new node no longer accepts, as a readable problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

Node = Mapping[str, Any]

ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}
    | {"deprecated", "readOnly", "writeOnly"}
)
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
UNDERSTOOD = frozenset(
    {"type", "enum", "const", "format", "pattern", "multipleOf", "uniqueItems"}
    | {"properties", "required", "additionalProperties", "items"}
    | set(LOWER_BOUNDS)
    | set(UPPER_BOUNDS)
)


def narrowing(old: Node, new: Node) -> list[str]:
    """What `new` no longer accepts of what `old` did, keyword by keyword."""
    return [
        *_format_change(old, new),
        *_values_change(old, new),
        *_bounds_change(old, new),
        *_unknown_keyword_change(old, new),
    ]


def _format_change(old: Node, new: Node) -> Iterator[str]:
    before, after = old.get("format"), new.get("format")
    if after is not None and after != before:
        yield f"format changed from {before} to {after}" if before else f"format {after} added"


def _values_change(old: Node, new: Node) -> Iterator[str]:
    after = _allowed_values(new)
    if after is None:
        return
    before = _allowed_values(old)
    if before is None:
        yield f"now restricted to the values {_show(after)}"
        return
    allowed = {_canonical(value) for value in after}
    removed = [value for value in before if _canonical(value) not in allowed]
    if removed:
        yield f"values no longer allowed: {_show(removed)}"


def _allowed_values(node: Node) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _bounds_change(old: Node, new: Node) -> Iterator[str]:
    for keyword in (*LOWER_BOUNDS, *UPPER_BOUNDS):
        before, after = old.get(keyword), new.get(keyword)
        if after is None or before == after:
            continue
        if before is None:
            yield f"{keyword} {after} added"
        elif after > before if keyword in LOWER_BOUNDS else after < before:
            yield f"{keyword} tightened from {before} to {after}"
    pattern_before, pattern_after = old.get("pattern"), new.get("pattern")
    if pattern_after is not None and pattern_after != pattern_before:
        yield f"pattern changed from {pattern_before!r} to {pattern_after!r}"
    step_before, step_after = old.get("multipleOf"), new.get("multipleOf")
    if step_after is not None and (step_before is None or step_before % step_after != 0):
        yield f"multipleOf changed from {step_before} to {step_after}"
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        yield "items must now be unique"


def _unknown_keyword_change(old: Node, new: Node) -> Iterator[str]:
    for keyword in sorted((old.keys() | new.keys()) - UNDERSTOOD - ANNOTATIONS):
        if old.get(keyword) != new.get(keyword):
            yield f"{keyword} changed, which this check cannot judge: treat it as breaking"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(values: list[Any]) -> str:
    return ", ".join(_canonical(value) for value in values)
