"""What beat checks for drift: the ``[online.NAME.drift]`` sub-table of a schedule, and the checks' limits.

    [online.prod-hourly.drift]
    short = "1h"                  # the window checked (default: the schedule's window)
    long = "7d"                   # the baseline just before it (default 7d; at least as long as short)
    by = ["locale", "tenant"]     # metadata keys, each value a slice (default: all traffic only)
    min_drop = 0.05               # alert only on drops larger than this, in score units (default 0.05)
    every = "1h"                  # how often beat checks (default: the schedule's every)
    webhook_env = "DRIFT_WEBHOOK" # the variable holding the webhook URL: a Slack URL is a secret

Every judge of the schedule is checked. ``judgeq drift`` takes the same
settings as flags (a schedule's table gives its defaults).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from .errors import OnlineConfigError
from .windows import parse_duration

KEYS: Final = ("short", "long", "by", "min_drop", "every", "webhook_env")
DEFAULT_LONG: Final = timedelta(days=7)
DEFAULT_MIN_DROP: Final = 0.05
#: The longest span a check reads: a year of windows.
MAX_SPAN: Final = timedelta(days=366)
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY: Final = re.compile(r"[^\s.]{1,100}")


@dataclass(frozen=True)
class DriftSpec:
    """A drift check's settings: the two spans, the slices, the margin; for beat, its cadence and webhook."""

    short: timedelta
    long: timedelta = DEFAULT_LONG
    by: tuple[str, ...] = ()
    min_drop: float = DEFAULT_MIN_DROP
    every: timedelta | None = None
    webhook_env: str | None = None


def check_spans(short: timedelta, long: timedelta, where: str = "") -> None:
    """OnlineConfigError unless both spans are positive, at most a year, and the long one at least the short one."""
    lead = f"{where}: " if where else ""
    for name, span in (("short", short), ("long", long)):
        if span <= timedelta(0) or span > MAX_SPAN:
            raise OnlineConfigError(f"{lead}{name} must be longer than 0 and at most 366d, e.g. \"1h\" or \"7d\"")
    if long < short:
        raise OnlineConfigError(f"{lead}the long baseline ({_text(long)}) is shorter than the short window "
                                f"({_text(short)}); a baseline must be at least as long, e.g. short 1h, long 7d")


def check_min_drop(value: Any, where: str) -> float:
    """A margin in score units, 0 <= min_drop < 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value < 1.0:
        raise OnlineConfigError(f"{where}: {value!r} is not a score drop; give a number from 0 to below 1 "
                                "(scores run from 0 to 1), e.g. 0.05")
    return float(value)


def slice_key(text: str, where: str) -> str:
    """A ``--by`` key: a metadata key, written bare (``locale``) or as its record path (``metadata.locale``)."""
    key = text.strip().removeprefix("metadata.")
    if not _KEY.fullmatch(key):
        raise OnlineConfigError(f"{where}: {text[:80]!r} is not a metadata key; give one like locale or "
                                "metadata.locale")
    return key


def parse_drift(table: Any, where: str, window_step: timedelta) -> DriftSpec:
    """One ``[online.NAME.drift]`` table; ``where`` names it in every error."""
    if not isinstance(table, Mapping):
        raise OnlineConfigError(f"{where}: must be a table (short, long, by, min_drop, every, webhook_env)")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise OnlineConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    short = _duration(table, "short", where) or window_step
    long = _duration(table, "long", where) or DEFAULT_LONG
    check_spans(short, long, where)
    by = table.get("by", [])
    if isinstance(by, str):
        by = [by]
    if not isinstance(by, list) or not all(isinstance(k, str) for k in by):
        raise OnlineConfigError(f'{where} by: write a list of metadata keys, e.g. by = ["locale"]')
    keys = tuple(dict.fromkeys(slice_key(k, f"{where} by") for k in by))
    min_drop = check_min_drop(table.get("min_drop", DEFAULT_MIN_DROP), f"{where} min_drop")
    every = _duration(table, "every", where)
    webhook_env = table.get("webhook_env")
    if webhook_env is not None and (not isinstance(webhook_env, str) or not _ENV_NAME.fullmatch(webhook_env)):
        raise OnlineConfigError(f'{where} webhook_env: name the environment variable that holds the URL, e.g. '
                                'webhook_env = "DRIFT_WEBHOOK_URL" (the URL itself is a secret: not in the file)')
    return DriftSpec(short=short, long=long, by=keys, min_drop=min_drop, every=every, webhook_env=webhook_env)


def _duration(table: Mapping[str, Any], key: str, where: str) -> timedelta | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str):
        raise OnlineConfigError(f'{where} {key}: write a duration, e.g. "1h" or "7d"')
    found = parse_duration(value, f"{where} {key}")
    if found <= timedelta(0):
        raise OnlineConfigError(f'{where} {key}: must be longer than 0, e.g. "1h"')
    return found


def _text(span: timedelta) -> str:
    from .windows import format_duration

    return format_duration(span)
