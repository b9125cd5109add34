"""The contract marker: module-level `migration_phase = "contract"` plus a `contract_reason`.

A migration is an expand step unless it says otherwise. A contract step removes what an earlier
release stopped using, so it must say why that is now safe; a marker without a reason is refused.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

PHASE = "migration_phase"
REASON = "contract_reason"
PHASES = ("expand", "contract")


@dataclass(frozen=True, slots=True)
class Marker:
    contract: bool
    problems: tuple[tuple[ast.AST, str], ...]  # (where, what is wrong)

    @property
    def exempts(self) -> bool:
        """Destructive operations are allowed: a contract step with a reason."""
        return self.contract and not self.problems


def module_constants(module: ast.Module) -> dict[str, tuple[ast.stmt, ast.expr]]:
    """Module-level `NAME = value` (and `NAME: T = value`): name -> (statement, value)."""
    found: dict[str, tuple[ast.stmt, ast.expr]] = {}
    for statement in module.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (statement, statement.value)
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.value is not None
        ):
            found[statement.target.id] = (statement, statement.value)
    return found


def _literal(value: ast.expr) -> str | None:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def read_marker(module: ast.Module) -> Marker:
    constants = module_constants(module)
    problems: list[tuple[ast.AST, str]] = []
    phase = "expand"
    if PHASE in constants:
        where, value = constants[PHASE]
        literal = _literal(value)
        if literal not in PHASES:
            problems.append((where, f'{PHASE} must be the literal "expand" or "contract"'))
        else:
            phase = literal
    reason = constants.get(REASON)
    if phase == "contract":
        text = (_literal(reason[1]) or "").strip() if reason else ""
        if not text or (text.startswith("<") and text.endswith(">")):
            problems.append(
                (
                    reason[0] if reason else constants[PHASE][0],
                    f'a contract step needs a reason: add `{REASON} = "..."` saying why no '
                    "running release still needs what it removes (e.g. which release stopped "
                    "using it)",
                )
            )
    elif reason is not None:
        problems.append(
            (reason[0], f'{REASON} is only meaningful with `{PHASE} = "contract"`; add that too')
        )
    return Marker(contract=phase == "contract", problems=tuple(problems))
