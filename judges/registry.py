"""Registering local builtins: the ``@builtin`` decorator and the table it fills.

Local built-ins are factories registered with :func:`builtin`, in the manner
of inspect_ai's scorers: the factory's keyword arguments are the builtin's
parameters (the extra keys of its ``[judges.NAME]`` table), validated from the
factory's own signature, and it returns the per-record function. Because the
registered name, its code version and the validated arguments are all part of
the judge version, every verdict traces back to exactly what produced it::

    @builtin("regex", version="1")
    def regex(pattern: str, ignore_case: bool = False) -> RecordJudge:
        compiled = re.compile(pattern)
        return lambda record: ...

A builtin also declares the record fields it ``needs`` (``exact_match``
compares with ``expected``): a dataset with a record that lacks one is
refused at submit (:func:`judges.types.needed_fields`), instead of each such row failing.

This module imports no judge: modules that define builtins import it, and
:mod:`judges.catalog` imports them all and answers lookups, so looking a
builtin up always sees every one. Building a judge is :mod:`judges.build`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import JudgeArgumentError, JudgeConfigError
from .record import Record
from .verdict import Verdict

#: What a builtin factory returns: the verdict on one record.
RecordJudge = Callable[[Record], Verdict]


@dataclass(frozen=True)
class Builtin:
    """A registered local builtin: its name, code version and parameters."""

    name: str
    code_version: str
    factory: Callable[..., RecordJudge]
    params_model: type[BaseModel]
    summary: str
    needs: tuple[str, ...] = ()  # record fields every judged record must hold (see Record.has)

    @property
    def param_names(self) -> list[str]:
        return list(self.params_model.model_fields)

    @property
    def required(self) -> list[str]:
        return [n for n, f in self.params_model.model_fields.items() if f.is_required()]

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """The validated parameters with defaults filled in (the canonical form).

        Raises JudgeConfigError naming the bad key or value.
        """
        try:
            clean = self.params_model.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            raise JudgeConfigError(self._describe(exc)) from None
        try:
            self.factory(**clean)  # semantic checks, e.g. that a regex compiles
        except (JudgeConfigError, ValueError, TypeError) as exc:
            raise JudgeConfigError(f"builtin {self.name!r}: {exc}") from None
        return clean

    def make(self, params: dict[str, Any]) -> RecordJudge:
        """The per-record function for already checked parameters."""
        return self.factory(**params)

    def _describe(self, exc: ValidationError) -> str:
        takes = ", ".join(self.param_names) or "no parameters"
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown key {key!r} (builtin {self.name!r} takes: {takes})")
            elif error["type"] == "missing":
                problems.append(f"builtin {self.name!r} needs {key!r}; add {key} = ... to its table")
            else:
                problems.append(f"{key} = {error.get('input')!r}: {error['msg']}")
        return "; ".join(problems)


_BUILTINS: dict[str, Builtin] = {}


def builtin(
    name: str, *, version: str = "1", needs: tuple[str, ...] = ()
) -> Callable[[Callable[..., RecordJudge]], Callable[..., RecordJudge]]:
    """Register a local builtin factory under ``name``.

    ``version`` is the builtin's code version: bump it whenever a change to the
    factory can change a verdict, so the judge version changes with it.
    ``needs``: the record fields the builtin cannot judge without.
    """
    unknown = [field for field in needs if field not in Record.model_fields]
    if unknown:
        raise JudgeArgumentError(f"builtin {name!r} needs {unknown}, which records do not have")

    def register(factory: Callable[..., RecordJudge]) -> Callable[..., RecordJudge]:
        if name in _BUILTINS:
            raise JudgeArgumentError(f"builtin {name!r} is registered twice; rename one of them")
        hints = get_type_hints(factory, include_extras=True)
        fields: dict[str, Any] = {}
        for param in inspect.signature(factory).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise JudgeArgumentError(f"builtin {name!r}: parameters must be named, not *{param.name}")
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (hints.get(param.name, Any), default)
        model = create_model(
            f"{name}_params", __config__=ConfigDict(extra="forbid"), **fields
        )
        summary = (inspect.getdoc(factory) or "").split("\n", 1)[0]
        _BUILTINS[name] = Builtin(name, version, factory, model, summary, needs)
        return factory

    return register


def registered() -> MappingProxyType[str, Builtin]:
    """The builtins registered so far, read-only; look one up through :mod:`judges.catalog`."""
    return MappingProxyType(_BUILTINS)
