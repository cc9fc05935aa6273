"""One judge type's registry entry: how a ``[judges.NAME]`` table of that ``type`` is resolved, built,
versioned and described.

Every question judgeq asks of a judge that depends on its type is a field of :class:`JudgeType`,
so the code asking it looks the entry up (:func:`judges.types.judge_type`) instead of testing the
spec's class. The entries themselves are the modules beside this one (``llm``, ``local``,
``distilled``, ``cascade``); :mod:`judges.types` imports each and answers lookups.

An entry never imports the resolved judge, the config or the builder (they are above it): what it
needs of them comes in as arguments, :class:`Resolving` and :class:`Building`, whose callbacks
resolve or build another judge (a cascade's stages) and read a stage's message back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..base import Judge, Kind
from ..spec import LlmJudgeSpec, Spec

if TYPE_CHECKING:
    from ..egress import EgressPolicy
    from ..limits import RateLimiter
    from ..retry import RetryPolicy

S = TypeVar("S", bound=Spec)


class Stage(Protocol):
    """A resolved judge as an entry sees another one (:class:`judges.resolved.ResolvedJudge` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def spec(self) -> Spec: ...

    def to_message(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Resolving:
    """What resolving one table may use: its config's folder and file, and the config's other judges."""

    path: Path | None  # the config file read (None: none, the defaults)
    file: str  # the config file, as messages name it
    check_env: bool  # whether an unset API key variable fails the resolution
    resolve: Callable[[str], Stage]  # another judge of the same config, resolved

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in a table are read from: the toml's, else the working directory."""
        return self.path.parent if self.path is not None else Path.cwd()


@dataclass(frozen=True)
class Building:
    """The worker's options for building a judge (remote judges use them), and a way to build a stage.

    ``retry``, ``max_workers``, ``limiter`` and ``egress``: see :func:`judges.build.build`.
    ``build_stage`` builds the judge of a stage's message with the same options.
    """

    retry: RetryPolicy | None
    max_workers: int | None
    limiter: RateLimiter | None
    egress: EgressPolicy | None
    build_stage: Callable[[dict[str, Any]], Judge]


@dataclass(frozen=True)
class Description:
    """What ``judgeq judges`` shows of a judge: one line of definition, and figures for ``--json``."""

    definition: str
    metrics: dict[str, Any] | None = None


#: The LLM specs of a stage's message (a cascade asks it of its LLM stage).
StageCalls = Callable[[dict[str, Any]], list[LlmJudgeSpec]]


def _no_needs(spec: Any) -> tuple[str, ...]:
    return ()


def _no_calls(spec: Any, stage_calls: StageCalls) -> list[LlmJudgeSpec]:
    return []


def _complete(spec: Any) -> str | None:
    return None


@dataclass(frozen=True)
class JudgeType(Generic[S]):
    """One judge type: the table's ``type``, its spec model, and what judgeq does with a spec of it.

    ``code`` and ``inputs`` are the two halves of what the version hashes (:mod:`judges.version`
    adds ``JUDGE_CODE_VERSION`` and the type's name): the type's own code versions, and the part of
    the spec that can change a verdict or who gives it. Changing either changes every version of
    the type, which is stored data: never reshape them.
    """

    name: str  # the ``type = "..."`` of its tables
    spec: type[S]
    kind: Kind  # the queue its judges run on: remote when they may call a provider
    code: Callable[[S], dict[str, str]]
    inputs: Callable[[S], dict[str, Any]]  # JudgeConfigError for a spec not yet resolved
    resolve: Callable[[str, S, Resolving], S]  # the spec made self-contained (files read, stages inlined)
    build: Callable[[str, str, S, Building], Judge]  # (name, version, resolved spec, options) -> the judge
    describe: Callable[[S], Description]
    #: The record fields a judge of the spec cannot judge without (submit requires them of every record).
    needs: Callable[[S], tuple[str, ...]] = _no_needs
    #: The LLM specs a judge of the spec calls (its own, a stage's): keys, endpoints and trust are theirs.
    calls: Callable[[S, StageCalls], list[LlmJudgeSpec]] = _no_calls
    #: Why a spec cannot travel as a resolved judge yet (None: it can).
    incomplete: Callable[[S], str | None] = _complete
