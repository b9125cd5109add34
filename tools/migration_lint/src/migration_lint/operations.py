"""Destructive operations in a migration's `upgrade()`, found in its syntax tree.

"Destructive" means what the release still running during a rollout breaks on, or what loses
data: dropping or renaming, narrowing or retyping a column, making one NOT NULL without a default,
adding a NOT NULL column without a default, deleting rows. Helper functions of the same module that
`upgrade()` calls are followed; an imported helper named `drop_*` counts as dropping.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from migration_lint.sql import destructive_statements

_DROPS = {
    "drop_table": "drops a table and its data",
    "drop_column": "drops a column and its data",
    "drop_index": "drops an index the running release may rely on (ON CONFLICT target, speed)",
    "drop_constraint": "drops a constraint the running release may rely on (e.g. ON CONFLICT)",
}
_SQL_CONSTRUCTS = frozenset({"insert", "update", "select", "delete"})
_VALUE_SOURCES = frozenset({"Identity", "Computed"})  # a column that fills itself
_SNIPPET = 90


@dataclass(frozen=True, slots=True)
class Operation:
    node: ast.AST
    message: str


def _callee(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _builds_statement(expr: ast.expr) -> bool:
    """A SQLAlchemy statement such as `sa.update(t).where(...).values(...)`."""
    while isinstance(expr, ast.Call):
        if _callee(expr) in _SQL_CONSTRUCTS:
            return True
        if not isinstance(expr.func, ast.Attribute):
            return False
        expr = expr.func.value
    return False


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg is not None}


def _snippet(node: ast.AST) -> str:
    code = " ".join(ast.unparse(node).split())
    return code if len(code) <= _SNIPPET else code[: _SNIPPET - 3] + "..."


def _adds_not_null_without_default(column: ast.Call) -> bool:
    kw = _keywords(column)
    not_null = _is_const(kw.get("nullable"), False) or (
        "nullable" not in kw and _is_const(kw.get("primary_key"), True)
    )
    defaulted = "server_default" in kw and not _is_const(kw["server_default"], None)
    fills_itself = any(
        isinstance(arg, ast.Call) and _callee(arg) in _VALUE_SOURCES for arg in column.args
    )
    return not_null and not defaulted and not fills_itself


class UpgradeScanner(ast.NodeVisitor):
    """Collects the destructive operations reachable from one function."""

    def __init__(self, functions: Mapping[str, ast.FunctionDef], strings: Mapping[str, str]):
        self._functions = functions  # module-level functions, followed when called
        self._strings = strings  # module-level string constants, for SQL built from them
        self._receivers = {"op"}  # `op`, batch_alter_table aliases, helpers' `op` parameters
        self._entered: set[str] = set()
        self._read_as_sql: set[int] = set()
        self.found: list[Operation] = []

    def scan(self, function: ast.FunctionDef) -> list[Operation]:
        self._entered.add(function.name)
        for statement in function.body:
            self.visit(statement)
        return self.found

    def _report(self, node: ast.AST, what: str) -> None:
        self.found.append(Operation(node, f"`{_snippet(node)}` {what}"))

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            context = item.context_expr
            if (
                isinstance(context, ast.Call)
                and self._on_op(context)
                and _callee(context) == "batch_alter_table"
                and isinstance(item.optional_vars, ast.Name)
            ):
                self._receivers.add(item.optional_vars.id)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        if self._on_op(node) and name is not None:
            self._operation(node, name)
        elif isinstance(node.func, ast.Name) and name in self._functions:
            self._enter(node, self._functions[node.func.id])
        elif name is not None and name.startswith("drop_") and not name.endswith("_comment"):
            self._report(node, "calls a helper that drops schema objects")
        elif node.args and (
            name in ("execute", "exec_driver_sql")
            or (name == "text" and id(node) not in self._read_as_sql)
        ):
            self._sql(node, node.args[0], required=False)
        elif name == "delete":
            self._report(node, "deletes rows")
        self.generic_visit(node)

    def _on_op(self, call: ast.Call) -> bool:
        func = call.func
        return (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self._receivers
        )

    def _enter(self, call: ast.Call, function: ast.FunctionDef) -> None:
        if function.name in self._entered:
            return
        self._entered.add(function.name)
        for arg, param in zip(call.args, function.args.args, strict=False):
            if isinstance(arg, ast.Name) and arg.id in self._receivers:
                self._receivers.add(param.arg)
        for statement in function.body:
            self.visit(statement)

    def _operation(self, call: ast.Call, method: str) -> None:
        kw = _keywords(call)
        if method.startswith("drop_") and not method.endswith("_comment"):
            self._report(call, _DROPS.get(method, "drops schema objects"))
        elif method == "rename_table":
            self._report(call, "renames a table the running release still uses by its old name")
        elif method == "alter_column":
            self._alter_column(call, kw)
        elif method == "add_column":
            columns = [*call.args, *kw.values()]
            for column in columns:
                if (
                    isinstance(column, ast.Call)
                    and _callee(column) == "Column"
                    and _adds_not_null_without_default(column)
                ):
                    self._report(
                        call,
                        "adds a NOT NULL column without a server_default: it fails on a "
                        "populated table, and the running release's INSERTs do not set it",
                    )
        elif method == "execute":
            sql = call.args[0] if call.args else kw.get("sqltext")
            if sql is not None:
                self._sql(call, sql, required=True)

    def _alter_column(self, call: ast.Call, kw: dict[str, ast.expr]) -> None:
        if "new_column_name" in kw:
            self._report(call, "renames a column the running release still uses by its old name")
        if "type_" in kw:
            self._report(
                call,
                "changes a column's type: narrowing loses data, and the running release may "
                "write values the new type refuses",
            )
        if _is_const(kw.get("nullable"), False) and (
            "server_default" not in kw or _is_const(kw["server_default"], None)
        ):
            self._report(
                call,
                "makes a column NOT NULL without a server_default: the running release's "
                "INSERTs that leave it out fail",
            )
        elif "server_default" in kw and _is_const(kw["server_default"], None):
            self._report(call, "removes a column default the running release may rely on")

    def _sql(self, call: ast.Call, expr: ast.expr, *, required: bool) -> None:
        sql = self._read_sql(expr)
        if sql is None:
            # A statement object is checked where it is built (`delete` is reported there).
            if required and not _builds_statement(expr):
                self._report(
                    call,
                    "runs SQL the check cannot read: pass a string literal (module-level "
                    "string constants and f-strings are read too)",
                )
            return
        for statement in destructive_statements(sql):
            self._report(call, f"runs {statement}")

    def _read_sql(self, expr: ast.expr) -> str | None:
        """The SQL text of `expr` if it is built from literals and module constants."""
        if isinstance(expr, ast.JoinedStr):
            return self._read_formatted(expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            left, right = self._read_sql(expr.left), self._read_sql(expr.right)
            return None if left is None or right is None else left + right
        if isinstance(expr, ast.Call) and expr.args and _callee(expr) == "text":
            self._read_as_sql.add(id(expr))
            return self._read_sql(expr.args[0])
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            return self._read_sql(expr.func.value) if expr.func.attr == "format" else None
        if isinstance(expr, ast.Name):
            return self._strings.get(expr.id)
        return (
            expr.value if isinstance(expr, ast.Constant) and isinstance(expr.value, str) else None
        )

    def _read_formatted(self, expr: ast.JoinedStr) -> str:
        parts: list[str] = []
        for part in expr.values:
            if isinstance(part, ast.FormattedValue):
                # An interpolated identifier: its value does not change what the SQL does.
                parts.append(self._read_sql(part.value) or "x")
            else:
                parts.append(self._read_sql(part) or "")
        return "".join(parts)
