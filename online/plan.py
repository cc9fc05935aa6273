"""What ``judgeq online``, ``judgeq explain`` and the beat task resolve before reading a window.

A schedule (``[online.NAME]``) or an ad-hoc one from flags, its source
opened and its judges resolved: every config error is raised here, before
anything is read or written (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import OnlineConfigError
from .sampling import SamplingPolicy
from .schedules import Schedule, load_schedules, read_toml
from .windows import MAX_RANGE, Window, check_closed, latest_closed, parse_duration, parse_size, windows_between

if TYPE_CHECKING:
    from judges.resolved import ResolvedJudge

    from .sources.base import TraceSource


@dataclass(frozen=True)
class Plan:
    """A schedule ready to judge windows: its source open and its judges resolved."""

    schedule: Schedule
    source: TraceSource
    judges: list[ResolvedJudge]


def schedule_for(config: Path | None, *, schedule: str | None = None, source: str | None = None,
                 judges: tuple[str, ...] = (), rate: float | None = None, strata: str | None = None,
                 min_per_stratum: int | None = None, size: str | None = None,
                 lateness: str | None = None) -> Schedule:
    """The named schedule, or an ad-hoc one over ``source`` (named after it) with the flags' policy.

    Flags given with a schedule override its sampling for this run; that
    changes the policy key only through strata and min_per_stratum (the
    rate is not part of it), so ``--rate`` on a window already judged
    changes nothing: a window keeps the rates it was first judged at (its
    rows' weights stay true), and the new rate applies from the next window.
    ``lateness`` (``--lateness``) replaces the schedule's grace period (an
    ad-hoc schedule's default is the schedules' ``5m``) for this command: how
    long after its end a window counts as closed; it is no part of a run's id.
    """
    if schedule is not None:
        schedules = load_schedules(config)
        if schedule not in schedules:
            known = ", ".join(sorted(schedules)) or "none"
            raise OnlineConfigError(f"{config or 'judgeq.toml'}: no [online.{schedule}] table (configured: {known}); "
                                    "add one, or give --source and --judge instead")
        found = schedules[schedule]
        if judges:
            found = replace(found, judges=tuple(judges))
    else:
        if source is None:
            raise OnlineConfigError("give --schedule NAME (an [online.NAME] table) or --source NAME with --judge")
        if not judges:
            raise OnlineConfigError(f"--source {source}: add --judge NAME (repeatable) to say who judges its traces")
        found = Schedule(name=source, source=source, judges=tuple(judges), size=parse_size(size or "1d"),
                         every=parse_size(size or "1d").step)
    if lateness is not None:
        found = replace(found, lateness=parse_duration(lateness, "--lateness"))
    policy: SamplingPolicy = found.policy
    if rate is not None:
        if not 0.0 <= rate <= 1.0:
            raise OnlineConfigError(f"--rate {rate:g} is not a share; give one from 0 to 1, e.g. 0.02")
        policy = replace(policy, rate=rate)
    if strata is not None:
        from .fields import canonical_path

        policy = replace(policy, strata=canonical_path(strata, "--strata"))
    if min_per_stratum is not None:
        policy = replace(policy, min_per_stratum=min_per_stratum)
    return replace(found, policy=policy)


def prepare(config: Path | None, schedule: Schedule, *, check_env: bool = True,
            max_record_bytes: int | None = None) -> Plan:
    """Open the schedule's source and resolve its judges (an LLM judge's key variable checked).

    ``max_record_bytes`` (``JUDGEQ_MAX_RECORD_BYTES``; None: its default) bounds what a file source reads.
    """
    from judges.config import load_config
    from judges.errors import JudgeConfigError

    from .sources.base import configured_source

    source = configured_source(schedule.source, config, max_record_bytes=max_record_bytes)
    judge_config = load_config(config)
    try:
        judges = [judge_config.resolve(name, check_env=check_env) for name in schedule.judges]
    except JudgeConfigError:
        raise
    return Plan(schedule=schedule, source=source, judges=judges)


def windows_for(schedule: Schedule, *, window: str | None, last: str | None, now: datetime) -> list[Window]:
    """``--window W`` or ``--window A..B`` (each closed, oldest first) or ``--last SIZE`` (the newest closed one).

    A range holds windows of one size, both ends included, at most
    ``MAX_RANGE`` of them; one that reaches a window not closed yet is refused
    whole (WindowError, exit 2), before anything is read or written.
    """
    if (window is None) == (last is None):
        raise OnlineConfigError("give one of --window ID (e.g. 2026-11-22T13, or a range 2026-11-22T00..2026-11-22T23) "
                                "or --last SIZE (e.g. 1h)")
    if last is not None:
        return [latest_closed(parse_size(last), now, schedule.lateness)]
    assert window is not None
    found = windows_between(window, MAX_RANGE)
    check_closed(found[-1], now, schedule.lateness)  # the newest: the others ended before it
    return found


__all__ = ["Plan", "prepare", "read_toml", "schedule_for", "windows_for"]
