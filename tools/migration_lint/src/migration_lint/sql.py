"""Destructive statements in raw SQL (`op.execute("...")`), found by pattern.

Comments and quoted literals are blanked first, so a value such as `'drop'` in an UPDATE is not
taken for a statement. `DROP NOT NULL` relaxes a column and is safe; everything else that drops,
renames, narrows or deletes is reported.
"""

from __future__ import annotations

import re

_COMMENTS_AND_LITERALS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)
_DROP = re.compile(r"\bDROP\s+(?!NOT\s+NULL\b)(MATERIALIZED\s+VIEW|\w+)", re.IGNORECASE)
# What may follow DROP; anything else (`ALTER TABLE t DROP c`, `DROP IF EXISTS c`) is a column.
_DROPPED_KINDS = frozenset(
    {
        *("TABLE", "COLUMN", "INDEX", "CONSTRAINT", "SCHEMA", "VIEW", "TYPE", "SEQUENCE"),
        *("TRIGGER", "FUNCTION", "PROCEDURE", "DEFAULT", "IDENTITY", "EXPRESSION", "EXTENSION"),
        *("DOMAIN", "OWNED", "POLICY", "RULE", "DATABASE", "ROLE"),
    }
)
_OTHERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bRENAME\b", re.IGNORECASE), "RENAME"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.IGNORECASE), "SET NOT NULL"),
    (
        re.compile(
            r"\bALTER\s+(?:COLUMN\s+)?(?!(?:TABLE|INDEX|SCHEMA|SEQUENCE|VIEW|TYPE)\b)"
            r"\"?\w+\"?\s+(?:SET\s+DATA\s+)?TYPE\b",
            re.IGNORECASE,
        ),
        "ALTER COLUMN TYPE",
    ),
    (re.compile(r"\bTRUNCATE\b", re.IGNORECASE), "TRUNCATE"),
    (re.compile(r"\bDELETE\s+FROM\b", re.IGNORECASE), "DELETE FROM"),
)


def destructive_statements(sql: str) -> list[str]:
    """The destructive operations `sql` performs, e.g. `["DROP COLUMN"]`; empty when none."""
    code = _COMMENTS_AND_LITERALS.sub(" ", sql)
    found: list[str] = []
    for match in _DROP.finditer(code):
        kind = " ".join(match.group(1).upper().split())
        found.append(f"DROP {kind if kind in _DROPPED_KINDS or ' ' in kind else 'COLUMN'}")
    for pattern, label in _OTHERS:
        found.extend(label for _ in pattern.finditer(code))
    return found
