"""Find the calls that matter in a notebook's cells, with their arguments' values, by reading the syntax tree.

Simple constants assigned earlier (``max_seq_length = 2048`` in one cell, used in the next) are resolved in
cell order; anything computed at run time stays unknown and is reported, never guessed. Code under
``if False:`` is what the notebook offers but does not run: its calls are kept, marked inactive.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from unsloth_nb.errors import ConfigError
from unsloth_nb.importer.cells import Cell, python_source


@dataclass(frozen=True)
class Value:
    """An argument: its value when it is a constant (or resolves to one), else the source text."""

    value: Any
    known: bool
    text: str


@dataclass
class Call:
    """One call: ``receiver.name(args, kwargs)``, where it is, and whether the notebook runs it."""

    name: str
    receiver: str | None
    args: list[Value]
    kwargs: dict[str, Value]
    where: str
    active: bool
    cell: Cell = field(repr=False)
    line: int = 0

    def kwarg(self, name: str, position: int | None = None) -> Value | None:
        """A keyword argument, or the positional one at ``position`` when it was passed that way."""
        if name in self.kwargs:
            return self.kwargs[name]
        if position is not None and position < len(self.args):
            return self.args[position]
        return None


@dataclass
class Scan:
    """Every call of every code cell in order, and the attributes read that mean something (``_ollama_modelfile``)."""

    calls: list[Call] = field(default_factory=list)
    attributes: list[Call] = field(default_factory=list)
    strings: list[tuple[str, str]] = field(default_factory=list)  # (where, text) of string constants assigned


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
#: Attributes whose reading means a feature is used.
_ATTRIBUTES = {"_ollama_modelfile"}


def scan_cells(cells: list[Cell]) -> Scan:
    """Parse every cell (a cell that does not parse is refused with its line) and collect its calls."""
    scan = Scan()
    env: dict[str, Any] = {}
    for cell in cells:
        source = python_source(cell.source)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise ConfigError("import", f"{cell.where(exc.lineno or 1)}: not Python that can be read ({exc.msg})") from None
        _Walker(cell, source, env, scan).block(tree.body, active=True)
    return scan


class _Walker:
    def __init__(self, cell: Cell, source: str, env: dict[str, Any], scan: Scan) -> None:
        self.cell, self.source, self.env, self.scan = cell, source, env, scan

    def block(self, statements: list[ast.stmt], active: bool) -> None:
        for statement in statements:
            self.statement(statement, active)

    def statement(self, node: ast.stmt, active: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # a formatting function's body runs per row, on data: nothing to configure there
        if isinstance(node, ast.If):
            self.expressions(node.test, active)
            test = self.value(node.test)
            self.block(node.body, active and (not test.known or bool(test.value)))
            self.block(node.orelse, active and (not test.known or not bool(test.value)))
            return
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try)):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expressions(child, active)
            for name in ("body", "orelse", "finalbody"):
                self.block(getattr(node, name, []) or [], active)
            for handler in getattr(node, "handlers", []) or []:
                self.block(handler.body, active)
            return
        self.expressions(node, active)
        if isinstance(node, ast.Assign):
            resolved = self.value(node.value)
            for target in node.targets:
                self.assign(target, resolved if active else None)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            self.assign(node.target, None)

    def assign(self, target: ast.expr, value: Value | None) -> None:
        if isinstance(target, ast.Name):
            if value is not None and value.known:
                self.env[target.id] = value.value
                if isinstance(value.value, str):
                    self.scan.strings.append((self.cell.where(target.lineno), value.value))
            else:
                self.env.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.assign(element, None)

    def expressions(self, node: ast.AST, active: bool) -> None:
        for child in _walk(node):
            if isinstance(child, ast.Call):
                self.scan.calls.append(self.call(child, active))
            elif isinstance(child, ast.Attribute) and child.attr in _ATTRIBUTES:
                line = child.lineno
                self.scan.attributes.append(Call(child.attr, None, [], {}, self.cell.where(line), active, self.cell, line))

    def call(self, node: ast.Call, active: bool) -> Call:
        func = node.func
        if isinstance(func, ast.Attribute):
            name = func.attr
            receiver = _dotted(func.value)
        else:
            name = _dotted(func) or self.text(func)
            receiver = None
        args = [self.value(arg) for arg in node.args if not isinstance(arg, ast.Starred)]
        kwargs = {kw.arg: self.value(kw.value) for kw in node.keywords if kw.arg is not None}
        return Call(name, receiver, args, kwargs, self.cell.where(node.lineno), active, self.cell, node.lineno)

    def text(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.source, node) or ast.dump(node)

    def value(self, node: ast.expr) -> Value:
        try:
            return Value(self.evaluate(node), True, self.text(node))
        except _Unknown:
            return Value(None, False, self.text(node))

    def evaluate(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            raise _Unknown
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.evaluate(element) for element in node.elts]
        if isinstance(node, ast.Dict):
            if any(key is None for key in node.keys):
                raise _Unknown
            return {self.evaluate(key): self.evaluate(value) for key, value in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]  # None keys refused above
        if isinstance(node, ast.UnaryOp):
            operand = self.evaluate(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            if isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(operand, (int, float)):
                return -operand if isinstance(node.op, ast.USub) else operand
            raise _Unknown
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if isinstance(left, (int, float, str)) and isinstance(right, (int, float, str)):
                try:
                    return _OPERATORS[type(node.op)](left, right)
                except (TypeError, ZeroDivisionError, OverflowError):
                    raise _Unknown from None
            raise _Unknown
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.startswith("torch."):
                return dotted  # torch.bfloat16: a dtype named as text, as our field takes it
        raise _Unknown


class _Unknown(Exception):
    """An expression whose value is only known when the code runs."""


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` in source order, not entering lambdas or nested function bodies."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        yield from _walk(child)
