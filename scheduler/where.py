"""``--where`` expressions over judged rows: ``score < 0.5 and metadata.locale == "de"``.

The language is a small subset of Python's expression syntax, parsed with the
standard library's ``ast`` (the parser, never ``eval``) and compiled here into
a predicate by walking a whitelist of node types; anything else is refused
with its column. ``online/filters.py`` is the sampling policy's ``where``, a
TOML table of equality and membership tests on a raw trace; promotion needs
comparisons (``score < 0.5``) and ``or``, so it has this language instead,
and reads record fields through the same ``online.fields`` paths.

    names       score, label, reason, status, error_kind, error, cost_usd, latency_s,
                attempts, cached, weight, stratum, cluster (the score row);
                id, input, output, context, expected, ts, metadata.KEY or
                metadata["a key"] (the judged record; aliases such as trace_id work)
    values      numbers, "text" or 'text', true/false (or True/False), null (or None)
    tests       < <= > >= == != between a name and a value (chains like 0.2 < score < 0.5),
                in [..] / not in [..], is null / is not null
    logic       and, or, not, parentheses

A name whose value is absent (an error row's score, a metadata key a record
lacks) fails every test except ``== null``, ``is null`` and ``not in``, so
``score < 0.5`` never picks error rows; pick those with ``status == "error"``.
Values compare as JSON values: "1" is not 1, and true is not 1.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from online.errors import OnlineConfigError
from online.fields import MISSING, canonical_path, compile_path

from .errors import UsageError

Row = Mapping[str, Any]  # {"row": score row fields, "record": the stored record}
Predicate = Callable[[Row], bool]

#: Fields of the score row a --where may name, and whether they hold numbers (True), text (False) or else (None).
ROW_FIELDS: Final[dict[str, bool | None]] = {
    "score": True, "label": False, "reason": False, "status": False, "error_kind": False,
    "error": False, "cost_usd": True, "latency_s": True, "attempts": True, "cached": None,
    "weight": True, "stratum": False, "cluster": False}
_ORDER: Final[dict[type[ast.cmpop], Callable[[Any, Any], bool]]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_WORDS: Final = {"true": True, "false": False, "null": None}
#: Levels of the syntax tree a condition may nest (``not not …``, parentheses); real ones use a handful.
MAX_NESTING: Final = 64
_SINGLE_EQUALS: Final = re.compile(r"(?<![=!<>])=(?![=<>])")


@dataclass(frozen=True)
class Where:
    """A parsed ``--where``: its text and the predicate over ``{"row": ..., "record": ...}``."""

    text: str
    test: Predicate

    def __call__(self, row: Row) -> bool:
        return self.test(row)


def parse_where(text: str, option: str = "--where") -> Where:
    """Parse ``text``; UsageError (exit 2) naming the column of the first problem."""
    if not text.strip():
        raise UsageError(f'{option} is empty; write a condition like "score < 0.5"')
    deep = f"{option} nests more than {MAX_NESTING} levels (not, parentheses, and/or); write a flatter condition"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):  # CPython's parser gives up on deep nesting with one or the other
        raise UsageError(deep) from None
    except SyntaxError as exc:
        column = exc.offset or 1
        hint = ("write == to compare" if _SINGLE_EQUALS.search(text)
                else 'write a condition like "score < 0.5 and metadata.locale == \'de\'"')
        raise UsageError(f"{option} {text.strip()!r}, column {column}: {exc.msg}; {hint}") from None
    if _depth(tree.body) > MAX_NESTING:  # the compiler below recurses once per level
        raise UsageError(deep)
    return Where(text.strip(), _Compiler(text.strip(), option).test(tree.body))


def _depth(node: ast.AST) -> int:
    """How deeply ``node``'s tree nests, counted without recursion (a hostile tree may be thousands deep)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(item))
    return deepest


class _Compiler:
    """Turns the whitelisted nodes into closures; every refusal names its column (1-based)."""

    def __init__(self, text: str, option: str) -> None:
        self.text = text
        self.option = option

    def fail(self, node: ast.AST, problem: str) -> UsageError:
        column = getattr(node, "col_offset", 0) + 1
        return UsageError(f"{self.option} {self.text!r}, column {column}: {problem}")

    def test(self, node: ast.expr) -> Predicate:
        if isinstance(node, ast.BoolOp):
            parts = [self.test(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda row: all(part(row) for part in parts)
            return lambda row: any(part(row) for part in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.test(node.operand)
            return lambda row: not inner(row)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        raise self.fail(node, "expected a test such as score < 0.5")

    def compare(self, node: ast.Compare) -> Predicate:
        tests: list[Predicate] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            tests.append(self.one(left, op, right))
            left = right
        if len(tests) == 1:
            return tests[0]
        return lambda row: all(test(row) for test in tests)

    def one(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> Predicate:
        """One test between a name and a value (either side; a value on the left is flipped)."""
        if isinstance(op, ast.In | ast.NotIn):
            get, numeric = self.name(left)
            values = self.values(right)
            inside = op.__class__ is ast.In
            return lambda row: _member(get(row), values) is inside
        if self.is_name(right) and not self.is_name(left):
            left, right = right, left
            op = {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(op.__class__, op)
        get, numeric = self.name(left)
        value = self.value(right)
        if isinstance(op, ast.Is | ast.IsNot):
            if value is not None:
                raise self.fail(right, "'is' compares with null only; write == for a value")
            absent = isinstance(op, ast.Is)
            return lambda row: (get(row) is MISSING) is absent
        if isinstance(op, ast.Eq | ast.NotEq):
            equal = isinstance(op, ast.Eq)
            if value is None:
                return lambda row: (get(row) is MISSING) is equal
            return lambda row: _equal(get(row), value) is equal
        compare = _ORDER.get(op.__class__)
        if compare is None:
            raise self.fail(right, "unsupported comparison")
        if not _is_number(value) and not isinstance(value, str):
            raise self.fail(right, f"{json.dumps(value)} cannot be ordered; compare with a number or text")
        if numeric is not None and numeric != _is_number(value):
            kind = "a number" if numeric else "text"
            raise self.fail(right, f"{ast.unparse(left)} holds {kind}; compare it with {kind}")

        def ordered(row: Row) -> bool:
            got = get(row)
            if got is MISSING or _is_number(got) != _is_number(value):
                return False
            return compare(got, value)

        return ordered

    def is_name(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute | ast.Subscript) or (isinstance(node, ast.Name)
                                                                    and node.id not in _WORDS)

    def name(self, node: ast.expr) -> tuple[Callable[[Row], Any], bool | None]:
        """A getter of the named field (MISSING when absent or null) and whether it holds numbers (None: unknown)."""
        path = self.path(node)
        if path in ROW_FIELDS:
            return _row_getter(path), ROW_FIELDS[path]
        try:
            canonical = canonical_path(path, "name")
        except OnlineConfigError:
            fields = ", ".join([*ROW_FIELDS, "id", "input", "output", "context", "expected", "ts", "metadata.KEY"])
            raise self.fail(node, f"unknown name {path!r} (names: {fields})") from None
        if canonical == "metadata":
            raise self.fail(node, "metadata holds keys; name one, like metadata.locale")
        get = compile_path(canonical)
        return (lambda row: get(row["record"])), None

    def path(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{self.path(node.value)}.{node.attr}"
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value,
                                                                                                   str):
            return f"{self.path(node.value)}.{node.slice.value}"
        raise self.fail(node, "expected a name such as score, label or metadata.locale")

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in _WORDS:
            return _WORDS[node.id]
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
                and isinstance(node.operand, ast.Constant) and _is_number(node.operand.value)):
            number: float = node.operand.value  # type: ignore[assignment]  # an int or float, checked above
            return -number if isinstance(node.op, ast.USub) else number
        raise self.fail(node, "expected a value: a number, \"text\", true, false or null")

    def values(self, node: ast.expr) -> tuple[Any, ...]:
        if not isinstance(node, ast.List | ast.Tuple) or not node.elts:
            raise self.fail(node, 'expected a list of values, like ["de", "fr"]')
        return tuple(self.value(element) for element in node.elts)


def _row_getter(name: str) -> Callable[[Row], Any]:
    def get(row: Row) -> Any:
        value = row["row"].get(name)
        return MISSING if value is None else value

    return get


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(got: Any, value: Any) -> bool:
    """JSON equality: a bool equals only a bool, a number only a number."""
    if got is MISSING or isinstance(got, bool) != isinstance(value, bool):
        return False
    if _is_number(got) != _is_number(value):
        return False
    return bool(got == value)


def _member(got: Any, values: tuple[Any, ...]) -> bool:
    if got is MISSING:
        return None in values
    return any(_equal(got, value) for value in values if value is not None)
