"""The judge config, judgeq.toml: loading it and resolving a judge name.

Only the ``[judges]`` table is read here; other top-level tables belong to
other parts of judgeq and are ignored. A name resolves to a configured
``[judges.NAME]`` table, or else to a local builtin of that name whose
parameters all have defaults (``exact_match``, ``contains``, ``json_valid``,
``context_overlap``, ``noop``; ``regex`` needs a pattern, so only via a table).

Resolving is the judge type's (:mod:`judges.types`): an LLM judge's prompt
is read into the spec (a file relative to the toml's folder, or a built-in
template) and by default its API key variable checked, so that ``judgeq
submit`` fails before enqueueing anything rather than every row failing later;
a distilled judge's artifact is checked and pinned; a cascade's stages are
resolved here and inlined.

The config and prompt files must be regular files of UTF-8 text, at most
``MAX_CONFIG_BYTES`` and ``MAX_PROMPT_BYTES`` (a prompt travels in every task
message, :mod:`judges.types.llm`): ``prompt = "/dev/zero"`` is refused, not read forever.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .errors import JudgeConfigError
from .catalog import builtins
from .files import read_small_file
from .resolved import ResolvedJudge
from .spec import LocalJudgeSpec, Spec
from .types import judge_type, parse_spec
from .types.entry import Resolving

__all__ = ["DEFAULT_CONFIG_PATH", "JudgeConfig", "ResolvedJudge", "load_config"]

#: Where the config is looked for when none is given (JUDGEQ_CONFIG's default).
DEFAULT_CONFIG_PATH = Path("judgeq.toml")
MAX_CONFIG_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class JudgeConfig:
    """The judges of one judgeq.toml (possibly none), and where it was read from."""

    judges: dict[str, Spec] = field(default_factory=dict)
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        """The folder prompt files are relative to: the toml's, else the working directory."""
        return self.path.parent if self.path is not None else Path.cwd()

    def names(self) -> list[str]:
        """Configured judge names, then the builtins usable by name alone."""
        usable = [name for name, b in builtins().items() if not b.required and name not in self.judges]
        return [*self.judges, *sorted(usable)]

    def resolve(self, name: str, *, check_env: bool = True) -> ResolvedJudge:
        """The resolved judge ``name``: prompt text inlined, version computed.

        ``check_env=False`` skips the API key check (workers fail the rows instead).
        Raises JudgeConfigError for an unknown name, a missing prompt file or an unset key.
        """
        spec: Spec | None = self.judges.get(name)
        if spec is None:
            spec = self._builtin_spec(name)
        resolving = Resolving(self.path, self._file(), check_env,
                              lambda stage: self.resolve(stage, check_env=check_env))
        return ResolvedJudge.of(name, judge_type(spec).resolve(name, spec, resolving))

    def _builtin_spec(self, name: str) -> LocalJudgeSpec:
        known = builtins()
        found = known.get(name)
        if found is None:
            configured = ", ".join(self.judges) or "none"
            usable = ", ".join(sorted(n for n, b in known.items() if not b.required))
            raise JudgeConfigError(
                f"unknown judge {name!r}; configured in {self._file()}: {configured}; built-in: {usable}. "
                f"Add a [judges.{name}] table to {self._file()} or use one of these names"
            )
        if found.required:
            needs = ", ".join(found.required)
            raise JudgeConfigError(
                f"builtin {name!r} needs {needs}, so it can only be used through a table; add to {self._file()}: "
                f'[judges.my_{name}] type = "local", builtin = "{name}", '
                + ", ".join(f"{key} = ..." for key in found.required)
            )
        return LocalJudgeSpec(type="local", builtin=name)

    def _file(self) -> str:
        return str(self.path) if self.path is not None else str(DEFAULT_CONFIG_PATH)


def load_config(path: Path | None = None) -> JudgeConfig:
    """The judge config in ``path``; the default path (``judgeq.toml``) may be missing.

    ``None`` and ``Path("judgeq.toml")`` (JUDGEQ_CONFIG's default, which
    settings pass on as is) both mean the default: if it is missing the config
    is empty and the builtins still resolve. Any other path must exist. A bad
    file raises JudgeConfigError naming the file, the table and the key.
    """
    found = read_config(path)
    if found is None:
        return JudgeConfig(path=None)
    data, target = found
    tables = data.get("judges", {})
    if not isinstance(tables, dict):
        raise JudgeConfigError(f"{target}: 'judges' must be a table of [judges.NAME] tables; fix the file")
    judges: dict[str, Spec] = {}
    for name, table in tables.items():
        try:
            judges[name] = parse_spec(name, table)
        except JudgeConfigError as exc:
            raise JudgeConfigError(f"{target}: {exc}") from None
    return JudgeConfig(judges=judges, path=target.resolve())


def read_config(path: Path | None) -> tuple[dict[str, Any], Path] | None:
    """The parsed TOML of the config at ``path`` and that path; None when the default path is missing.

    ``None`` and ``Path("judgeq.toml")`` mean the default, which may be
    missing; any other path must exist. Every table is left to its reader
    (``[judges.*]`` here, ``[sources.*]`` in online.sources). Raises
    JudgeConfigError naming the file.
    """
    explicit = path is not None and path != DEFAULT_CONFIG_PATH
    target = path if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = read_small_file(target, MAX_CONFIG_BYTES, "config file")
    except FileNotFoundError:
        if not explicit:
            return None
        raise JudgeConfigError(
            f"config file {str(target)!r} does not exist; create it, or point JUDGEQ_CONFIG at an existing judgeq.toml"
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8")), target
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise JudgeConfigError(f"{target}: not valid TOML ({exc}); fix the file") from None
