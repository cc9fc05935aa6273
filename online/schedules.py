"""Online schedules: the ``[online.NAME]`` tables of judgeq.toml, and the ad-hoc one ``judgeq online`` flags make.

    [online.prod-hourly]
    source = "prod"                      # a [sources.NAME] table
    judges = ["faithfulness", "exact"]   # judges of the [judges] tables, or builtins
    window = "1h"                        # window size: 1m..30m (dividing an hour), 1h, 1d, 1w
    every = "1h"                         # how often beat looks for newly closed windows (default: the window)
    lateness = "5m"                      # a window is closed this long after its end (late traces)
    catch_up = 3                         # after downtime, at most this many missed windows, oldest first
    [online.prod-hourly.sampling]        # online.sampling.parse_policy
    rate = 0.02
    strata = "metadata.locale"
    min_per_stratum = 30
    [online.prod-hourly.drift]           # optional: beat checks drift (online.drift_config.parse_drift)
    long = "7d"
    by = ["locale"]

A schedule's name is the ledger's ``dataset_name`` of its runs; an ad-hoc
run (``judgeq online --source S``) is named after its source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from .drift_config import DriftSpec, parse_drift
from .errors import OnlineConfigError
from .sampling import SamplingPolicy, parse_policy
from .windows import Size, parse_duration, parse_size

KEYS: Final = ("source", "judges", "window", "every", "lateness", "catch_up", "sampling", "drift")
DEFAULT_LATENESS: Final = timedelta(minutes=5)
DEFAULT_CATCH_UP: Final = 3
MAX_CATCH_UP: Final = 1000
#: Schedule names: beat hands them to the tick task (workers/tasks.py ``online_tick``), which accepts only these.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


@dataclass(frozen=True)
class Schedule:
    """What beat (or ``judgeq online``) judges: a source's windows of one size, sampled, by some judges."""

    name: str
    source: str
    judges: tuple[str, ...]
    size: Size
    every: timedelta
    lateness: timedelta = DEFAULT_LATENESS
    catch_up: int = DEFAULT_CATCH_UP
    policy: SamplingPolicy = field(default_factory=SamplingPolicy)
    drift: DriftSpec | None = None  # [online.NAME.drift]: beat checks the schedule's judges for drift


def read_toml(path: Path | None) -> dict[str, Any]:
    """The config file's tables (empty when the default file is missing), read as judges.config reads it."""
    from judges.config import read_config

    found = read_config(path)
    return {} if found is None else found[0]


def load_schedules(path: Path | None) -> dict[str, Schedule]:
    """Every ``[online.NAME]`` table of the config, parsed; OnlineConfigError naming file, table and key."""
    tables = read_toml(path).get("online", {})
    where = str(path or "judgeq.toml")
    if not isinstance(tables, Mapping):
        raise OnlineConfigError(f"{where}: 'online' must hold [online.NAME] tables; fix the file")
    return {name: parse_schedule(name, table, f"{where} [online.{name}]") for name, table in tables.items()}


def parse_schedule(name: str, table: Any, where: str) -> Schedule:
    """One ``[online.NAME]`` table; ``where`` starts every error message."""
    if not NAME_PATTERN.fullmatch(name):
        raise OnlineConfigError(f"{where}: {name[:80]!r} is not a schedule name; use letters, digits, '_', '.' and "
                                "'-' (starting with a letter or digit), e.g. [online.prod-hourly]")
    if not isinstance(table, Mapping):
        raise OnlineConfigError(f"{where}: must be a table (source, judges, window, ...)")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise OnlineConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    source = table.get("source")
    if not isinstance(source, str) or not source:
        raise OnlineConfigError(f'{where}: source is missing; name a [sources.NAME] table, e.g. source = "prod"')
    judges = table.get("judges")
    if not isinstance(judges, list) or not judges or not all(isinstance(j, str) and j for j in judges):
        raise OnlineConfigError(f'{where} judges: write a list of judge names, e.g. judges = ["faithfulness"]')
    if len(set(judges)) != len(judges):
        raise OnlineConfigError(f"{where} judges: a judge is listed twice; list each once")
    size = _size(table.get("window"), f"{where} window")
    every = _duration(table.get("every"), f"{where} every") if "every" in table else size.step
    if every <= timedelta(0):
        raise OnlineConfigError(f'{where} every: must be longer than 0, e.g. "1h"')
    lateness = _duration(table.get("lateness"), f"{where} lateness") if "lateness" in table else DEFAULT_LATENESS
    catch_up = table.get("catch_up", DEFAULT_CATCH_UP)
    if isinstance(catch_up, bool) or not isinstance(catch_up, int) or not 1 <= catch_up <= MAX_CATCH_UP:
        raise OnlineConfigError(f"{where} catch_up: {catch_up!r} is not a window count; write 1 to {MAX_CATCH_UP}")
    sampling = table.get("sampling", {})
    if not isinstance(sampling, Mapping):
        raise OnlineConfigError(f"{where} sampling: write a [online.{name}.sampling] table")
    policy = parse_policy(sampling, f"{where[:-1]}.sampling]" if where.endswith("]") else f"{where} sampling")
    drift = None
    if "drift" in table:
        drift = parse_drift(table["drift"], f"{where[:-1]}.drift]" if where.endswith("]") else f"{where} drift",
                            size.step)
    return Schedule(name=name, source=source, judges=tuple(judges), size=size, every=every, lateness=lateness,
                    catch_up=catch_up, policy=policy, drift=drift)


def _size(value: Any, where: str) -> Size:
    if not isinstance(value, str):
        raise OnlineConfigError(f'{where}: write a window size, e.g. window = "1h" (or "1d", "1w", "5m")')
    try:
        return parse_size(value)
    except Exception as exc:
        raise OnlineConfigError(f"{where}: {exc}") from None


def _duration(value: Any, where: str) -> timedelta:
    if not isinstance(value, str):
        raise OnlineConfigError(f'{where}: write a duration, e.g. "5m", "90s" or "1h"')
    return parse_duration(value, where)
