"""What the migration check reports: one problem at one place in one file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARK_HOW = (
    'allowed only in a contract step, marked at module level: `migration_phase = "contract"` '
    'and `contract_reason = "<why no running release needs it any more>"`'
)
ADVICE = (
    "Expand/contract: add the new shape next to the old one first (nullable or with a "
    "server_default, then backfill); drop, rename or tighten the old one only once no running "
    "release uses it, in a migration of its own marked as a contract step."
)


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"
