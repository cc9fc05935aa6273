"""Judge factories: local built-ins registered by name, and building a judge from its spec.

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
refused at submit (:func:`needed_fields`), instead of each such row failing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import JudgeArgumentError, JudgeConfigError
from .record import Record
from .verdict import Verdict

if TYPE_CHECKING:
    from .base import Judge
    from .egress import EgressPolicy
    from .resolved import ResolvedJudge
    from .limits import RateLimiter
    from .retry import RetryPolicy

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


def builtins() -> dict[str, Builtin]:
    """Every registered local builtin, by name."""
    _load_builtins()
    return dict(_BUILTINS)


def get_builtin(name: str) -> Builtin:
    """The builtin called ``name``; JudgeConfigError listing the known ones otherwise."""
    _load_builtins()
    try:
        return _BUILTINS[name]
    except KeyError:
        raise JudgeConfigError(
            f"unknown builtin {name!r}; known builtins: {', '.join(sorted(_BUILTINS))}"
        ) from None


def needed_fields(spec: Any) -> tuple[str, ...]:
    """The record fields a judge of ``spec`` cannot judge without (an LLM judge: none)."""
    from .spec import LocalJudgeSpec

    return get_builtin(spec.builtin).needs if isinstance(spec, LocalJudgeSpec) else ()


def build(
    resolved: ResolvedJudge,
    *,
    retry: RetryPolicy | None = None,
    max_workers: int | None = None,
    limiter: RateLimiter | None = None,
    egress: EgressPolicy | None = None,
) -> Judge:
    """The judge object for a resolved judge.

    ``retry``, ``max_workers``, ``limiter`` and ``egress`` apply to remote
    (LLM) judges only: the retry policy of each record, the number of records
    judged at once, the rate limiter its calls share (default: one per
    process), and where its key may be sent (default: the built-in provider
    pairs of :mod:`judges.egress`).
    """
    from .distilled_spec import CascadeJudgeSpec, DistilledJudgeSpec
    from .spec import LlmJudgeSpec

    spec = resolved.spec
    if isinstance(spec, LlmJudgeSpec):
        from .llm import LlmJudge

        return LlmJudge(resolved.name, resolved.version, spec, retry=retry, max_workers=max_workers, limiter=limiter,
                        egress=egress)
    if isinstance(spec, DistilledJudgeSpec | CascadeJudgeSpec):
        from .distilled_build import build_distilled

        return build_distilled(resolved, lambda stage: build(stage, retry=retry, max_workers=max_workers,
                                                             limiter=limiter, egress=egress))
    from .local import LocalJudge

    record_judge = get_builtin(spec.builtin).make(spec.params)
    return LocalJudge(resolved.name, resolved.version, record_judge)


def _load_builtins() -> None:
    # The builtins register themselves on import; importing here (not at the
    # top) avoids the cycle local -> registry -> local.
    from . import local  # noqa: F401
