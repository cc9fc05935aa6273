"""``where`` filters of a sampling policy: which traces are never sampled (a judge's own, internal tenants).

    where = { "metadata.env" = "prod",                        # equality
              "metadata.locale" = { in = ["de", "fr"] },       # membership
              "metadata.tenant" = { not_in = ["internal"] },  # a trace without the field passes
              "metadata.is_judge" = { absent = true } }        # or present = true

A trace must pass every condition. A field is absent when the record lacks it
or it is null. Values compare as JSON values: "1" is not 1, and true is not 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from .errors import OnlineConfigError
from .fields import MISSING, canonical_path, compile_path

Op = Literal["eq", "in", "not_in", "present", "absent"]
Scalar = str | int | float | bool
OPS: Final = ("in", "not_in", "present", "absent")
_SHOW: Final = {"eq": "=", "in": "in", "not_in": "not in"}


@dataclass(frozen=True)
class Filter:
    """One condition on one record field path (canonical: aliases resolved) that a trace must meet."""

    path: str
    op: Op
    values: tuple[Scalar, ...] = ()

    def spec(self) -> str:
        """A canonical text of the condition (for the policy key: the values' order does not count)."""
        return json.dumps([self.path, self.op, sorted(json.dumps(v) for v in self.values)])

    def describe(self) -> str:
        if self.op in ("present", "absent"):
            return f"{self.path} {self.op}"
        shown = json.dumps(self.values[0]) if self.op == "eq" else json.dumps(list(self.values))
        return f"{self.path} {_SHOW[self.op]} {shown}"

    def value_of(self, raw: Mapping[str, Any]) -> Any:
        """The value of the filter's field in ``raw`` (MISSING when absent)."""
        return compile_path(self.path)(raw)

    def compile(self) -> Callable[[Mapping[str, Any]], bool]:
        """The predicate that keeps a raw trace: a closure over a precompiled getter, for the hot path."""
        get = compile_path(self.path)
        if self.op == "present":
            return lambda raw: get(raw) is not MISSING
        if self.op == "absent":
            return lambda raw: get(raw) is MISSING
        bools = frozenset(v for v in self.values if isinstance(v, bool))
        others = frozenset(v for v in self.values if not isinstance(v, bool))

        def member(raw: Mapping[str, Any]) -> bool:
            value = get(raw)
            return value in others if value.__class__ is str else _member(value, others, bools)

        def outside(raw: Mapping[str, Any]) -> bool:
            value = get(raw)
            return value not in others if value.__class__ is str else not _member(value, others, bools)

        return outside if self.op == "not_in" else member  # eq is membership of one value


def _member(value: Any, others: frozenset[Scalar], bools: frozenset[bool]) -> bool:
    if value.__class__ is bool:
        return value in bools
    try:
        return value in others
    except TypeError:  # an object or list: equal to no scalar
        return False


def _scalar(value: Any, where: str) -> Scalar:
    if isinstance(value, str | int | float | bool):
        return value
    raise OnlineConfigError(f"{where}: {value!r} is not a value to compare with; write text, a number or "
                            "true/false")


def _conditions(path: str, rule: Any, where: str) -> list[Filter]:
    if isinstance(rule, list):
        raise OnlineConfigError(f"{where}: for a list of values write {{ in = {json.dumps(rule)} }} "
                                "(or not_in)")
    if not isinstance(rule, Mapping):
        return [Filter(path, "eq", (_scalar(rule, where),))]
    if not rule:
        raise OnlineConfigError(f"{where}: an empty table; write one of {', '.join(OPS)}, e.g. "
                                '{ not_in = ["internal"] }')
    found = []
    for op, arg in rule.items():
        if op in ("in", "not_in"):
            if not isinstance(arg, list) or not arg:
                raise OnlineConfigError(f'{where} {op}: write a non-empty list, e.g. {op} = ["internal"]')
            found.append(Filter(path, op, tuple(_scalar(v, f"{where} {op}") for v in arg)))
        elif op in ("present", "absent"):
            if not isinstance(arg, bool):
                raise OnlineConfigError(f"{where} {op}: write {op} = true or {op} = false")
            flip: Op = "absent" if op == "present" else "present"
            found.append(Filter(path, op if arg else flip))
        else:
            raise OnlineConfigError(f"{where}: unknown condition {op!r}; write a value for equality, or one of "
                                    f"{', '.join(OPS)}, e.g. {{ not_in = [\"internal\"] }}")
    return found


def parse_where(table: Any, where: str) -> tuple[Filter, ...]:
    """The filters of a ``where`` table (keys are record field paths); ``where`` names it in errors."""
    if not isinstance(table, Mapping):
        raise OnlineConfigError(f'{where}: write a table of conditions, e.g. where = {{ "metadata.env" = "prod" }}')
    filters: list[Filter] = []
    for path, rule in table.items():
        filters += _conditions(canonical_path(path, f"{where} {path!r}"), rule, f"{where} {path!r}")
    return tuple(filters)
