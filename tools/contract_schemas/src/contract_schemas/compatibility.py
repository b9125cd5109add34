"""Whether a changed JSON Schema still serves the consumers of the published one.

The rule: the new schema must accept every document the old one accepted, and must still
describe every property the old one did. So a removed property, a narrowed type (number to
integer, a dropped `null`, an added or changed `format`, a removed enum value, a tighter bound)
and a property that became required all break consumers; a new optional property, a wider type
(integer to number, a new `anyOf` branch, a new enum value) and a looser bound do not.

It works on the draft 2020-12 documents pydantic emits: local `$ref`s into `$defs`, `anyOf` and
`oneOf` branches, `type` lists. A keyword it does not understand is compared for equality, so a
change it cannot judge is reported, never silently allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract_schemas.narrowing import narrowing

Node = Mapping[str, Any]
Branch = tuple[Node, str]  # one alternative of a node, and the `$ref` it was reached through
Finding = tuple[str, str]  # (path, problem)


@dataclass(frozen=True)
class Violation:
    """One change that breaks consumers of `schema` at `path` (`items[].quantity`)."""

    schema: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.schema}: {self.path or '(document)'}: {self.problem}"


class SchemaError(ValueError):
    """A document the check cannot read, e.g. a `$ref` that points nowhere."""


def breaking_changes(old: Node, new: Node, *, schema: str) -> list[Violation]:
    """Every change from `old` to `new` that breaks a consumer of `old`, in document order."""
    found = _Comparison(old, new).compare(old, new, "")
    unique = dict.fromkeys(found)
    return [Violation(schema, path, problem) for path, problem in unique]


class _Comparison:
    def __init__(self, old_document: Node, new_document: Node) -> None:
        self.old_document = old_document
        self.new_document = new_document
        self.active: set[tuple[str, str]] = set()  # $ref pairs being compared: recursion guard

    def compare(self, old: Node, new: Node, path: str) -> list[Finding]:
        old_branches = _branches(old, self.old_document)
        new_branches = _branches(new, self.new_document)
        findings: list[Finding] = []
        for branch in old_branches:
            kind = _kind(branch[0])
            candidates = [b for b in new_branches if _widens(_kind(b[0]), kind)]
            if not candidates:
                findings.append((path, _type_change(kind, old_branches, new_branches)))
                continue
            # The closest branch explains the change best (a nested property removed, say).
            explanations = [self._compare_branch(branch, c, path) for c in candidates]
            closest: list[Finding] = min(explanations, key=len)
            findings.extend(closest)
        return findings

    def _compare_branch(self, old: Branch, new: Branch, path: str) -> list[Finding]:
        pair = (old[1], new[1])
        if not all(pair):
            return self._compare_one(old[0], new[0], path)
        if pair in self.active:  # a recursive definition: being compared further up already
            return []
        self.active.add(pair)
        try:
            return self._compare_one(old[0], new[0], path)
        finally:
            self.active.discard(pair)

    def _compare_one(self, old: Node, new: Node, path: str) -> list[Finding]:
        findings = [(path, problem) for problem in narrowing(old, new)]
        if "object" in (_kind(old), _kind(new)):
            findings.extend(self._compare_objects(old, new, path))
        if "array" in (_kind(old), _kind(new)):
            findings.extend(self.compare(old.get("items", {}), new.get("items", {}), f"{path}[]"))
        return findings

    def _compare_objects(self, old: Node, new: Node, path: str) -> list[Finding]:
        findings: list[Finding] = []
        old_properties: Node = old.get("properties", {})
        new_properties: Node = new.get("properties", {})
        for name, old_property in old_properties.items():
            child = f"{path}.{name}" if path else name
            if name not in new_properties:
                findings.append((child, "property removed"))
            else:
                findings.extend(self.compare(old_property, new_properties[name], child))
        newly_required = set(new.get("required", ())) - set(old.get("required", ()))
        for name in sorted(newly_required):
            child = f"{path}.{name}" if path else name
            if name in old_properties:
                findings.append((child, "optional property made required"))
            else:
                findings.append((child, "new required property"))
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if new_extra is False and old_extra is not False:
            findings.append((path, "additional properties are no longer allowed"))
        elif isinstance(new_extra, Mapping) and old_extra is not False:
            old_extra_schema = old_extra if isinstance(old_extra, Mapping) else {}
            findings.extend(self.compare(old_extra_schema, new_extra, f"{path}{{*}}"))
        return findings


def _resolve(node: Node, document: Node) -> tuple[Node, str]:
    """The node with its `$ref` (and a lone `allOf` wrapper) replaced by what they point to."""
    ref = ""
    followed: set[str] = set()
    while "$ref" in node or _lone_all_of(node):
        siblings = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
        if "$ref" in node:
            ref = node["$ref"]
            if ref in followed:
                msg = f"$ref {ref!r} refers only to itself"
                raise SchemaError(msg)
            followed.add(ref)
            target = _follow(ref, document)
        else:
            target = node["allOf"][0]
        node = {**target, **siblings}
    return node, ref


def _lone_all_of(node: Node) -> bool:
    all_of = node.get("allOf")
    return isinstance(all_of, list) and len(all_of) == 1


def _follow(ref: str, document: Node) -> Node:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        msg = f"only local $refs into the same document are supported, not {ref!r}"
        raise SchemaError(msg)
    target: Any = document
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or key not in target:
            msg = f"$ref {ref!r} points nowhere"
            raise SchemaError(msg)
        target = target[key]
    if not isinstance(target, Mapping):
        msg = f"$ref {ref!r} is not a schema"
        raise SchemaError(msg)
    return target


def _branches(node: Node, document: Node, via: str = "") -> list[Branch]:
    """The alternatives a node accepts: its `anyOf`/`oneOf` branches and `type` list, flattened."""
    node, ref = _resolve(node, document)
    via = ref or via
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            shared = {k: v for k, v in node.items() if k != keyword}
            flat: list[Branch] = []
            for branch in node[keyword]:
                flat.extend(_branches({**shared, **branch}, document, via))
            return flat
    types = node.get("type")
    if isinstance(types, list):
        return [({**node, "type": one}, via) for one in types]
    return [(node, via)]


def _kind(node: Node) -> str:
    """The JSON type a branch accepts, or `any`."""
    declared = node.get("type")
    if isinstance(declared, str):
        return declared
    if "const" in node:
        return _json_type(node["const"])
    if "enum" in node:
        kinds = {_json_type(value) for value in node["enum"]}
        return kinds.pop() if len(kinds) == 1 else "any"
    if {"properties", "required", "additionalProperties"} & node.keys():
        return "object"
    if "items" in node:
        return "array"
    return "any"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _widens(new_kind: str, old_kind: str) -> bool:
    return new_kind in (old_kind, "any") or (old_kind, new_kind) == ("integer", "number")


def _type_change(kind: str, old: list[Branch], new: list[Branch]) -> str:
    was = " | ".join(_kind(branch) for branch, _ in old)
    now = " | ".join(_kind(branch) for branch, _ in new)
    if len(old) == 1:
        return f"type changed from {was} to {now}"
    return f"no longer accepts {kind} (type was {was}, now {now})"
