"""``judgeq drift``: has a slice's score dropped in the short window against the long baseline before it?

The statistics are ``online.drift`` and the check ``online.drift_check``
(README, "Drift alerts"); this module turns flags (or a schedule's
``[online.NAME.drift]`` table) into a query, records the outcome, prints it,
posts an alert to ``--webhook`` and exits 0 (no alert, or no data), 1
(alert) or 2 (bad usage). Registered on the root app by ``cli.main``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cli.exits import alert
from cli.options import JsonOpt
from cli.state import settings_of

if TYPE_CHECKING:
    from online.drift_check import DriftQuery
    from online.schedules import Schedule


def drift(
    ctx: typer.Context,
    judge: Annotated[str, typer.Option("--judge", help="The judge whose scores are checked.")],
    source: Annotated[Optional[str], typer.Option("--source", help="The online runs of this source "
                                                  "(ad-hoc `judgeq online --source` runs).")] = None,
    schedule: Annotated[Optional[str], typer.Option("--schedule", help="The runs of this online schedule "
                                                    "(its drift table gives the defaults).")] = None,
    short: Annotated[Optional[str], typer.Option("--short", help="The span checked: the windows that ended in "
                                                 "the last SHORT (default 1h).")] = None,
    long: Annotated[Optional[str], typer.Option("--long", help="The baseline: the LONG before the short span "
                                                "(default 7d).")] = None,
    by: Annotated[list[str], typer.Option("--by", help="A metadata key; each value is a slice (repeatable).")] = [],  # noqa: B006
    min_drop: Annotated[Optional[float], typer.Option("--min-drop", help="Alert only on drops larger than this, "
                                                      "in score units (default 0.05).")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Check as of this time (ISO 8601; default now; "
                                              "without a zone: UTC).")] = None,
    webhook: Annotated[Optional[str], typer.Option("--webhook", help="POST an alert here as JSON with a Slack "
                                                   "'text' field.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Drift: per slice, the short window's weighted mean against the long baseline just before it.

    Alerts on a slice when its drop exceeds --min-drop with one-sided 95 %
    confidence, Holm-corrected across slices. Exit 0: no alert (or no data),
    1: alert, 2: bad usage. Every check is recorded in the ledger.
    """
    from online.drift_check import check, record


    settings = settings_of(ctx)
    config = settings.config
    query = _query(config, judge, source, schedule, short, long, tuple(by), min_drop, at)
    if webhook is not None:
        from online.webhook import check_url

        check_url(webhook)
    ledger = settings.ledger()
    print(f"judgeq: checking {judge} on {query.source} as of {query.at:%Y-%m-%d %H:%M} UTC: reading both spans' rows",
          file=sys.stderr, flush=True)  # a week of windows can take seconds
    report = check(ledger, query)
    record(ledger, report, "cli")
    if report.status == "no_data" and source is not None:
        _hint_schedules(config, source)
    if json_out:
        from cli.views.render import print_json

        print_json(report.to_json())
    else:
        from cli.views.drift import show_drift

        show_drift(report)
    if report.status != "alert":
        return
    alert(webhook, report.to_json(), report.text(), "drift_checks")


def _query(config: Any, judge: str, source: Optional[str], schedule: Optional[str], short: Optional[str],
           long: Optional[str], by: tuple[str, ...], min_drop: Optional[float], at: Optional[str]) -> DriftQuery:
    """The check the flags ask for; OnlineConfigError (exit 2) for a bad flag, an unknown judge or source."""
    from online.budget.setting import check_names
    from online.drift_config import DEFAULT_LONG, DEFAULT_MIN_DROP, check_min_drop, slice_key
    from online.drift_check import DriftQuery
    from online.errors import OnlineConfigError
    from online.windows import parse_duration

    if (source is None) == (schedule is None):
        raise OnlineConfigError("give one of --source S (ad-hoc runs of a source) or --schedule N (an [online.N] "
                                "schedule's runs)")
    name = schedule or source or ""
    check_names(config, judge, name)
    spec = _schedule(config, schedule).drift if schedule else None
    query = DriftQuery(
        source=name, judge=judge,
        short=parse_duration(short, "--short") if short else (spec.short if spec else parse_duration("1h")),
        long=parse_duration(long, "--long") if long else (spec.long if spec else DEFAULT_LONG),
        at=_time(at),
        by=tuple(dict.fromkeys(slice_key(k, "--by") for k in by)) if by else (spec.by if spec else ()),
        min_drop=check_min_drop(min_drop, "--min-drop") if min_drop is not None else (
            spec.min_drop if spec else DEFAULT_MIN_DROP))
    return query


def _hint_schedules(config: Any, source: str) -> None:
    """Runs of a schedule are named after the schedule, not its source: say so when --source found nothing."""
    from online.schedules import load_schedules

    over = sorted(name for name, s in load_schedules(config).items() if s.source == source and name != source)
    if over:
        print(f"judgeq: note: --source {source} checks the runs of `judgeq online --source {source}`; the runs of "
              f"schedules reading it are checked with --schedule ({', '.join(over)})", file=sys.stderr)


def _schedule(config: Any, name: str) -> Schedule:
    from online.schedules import load_schedules

    return load_schedules(config)[name]  # check_names made sure it is there


def _time(text: Optional[str]) -> datetime:
    from online.errors import OnlineConfigError

    if text is None:
        return datetime.now(UTC)
    try:
        found = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OnlineConfigError(f"--at {text[:80]!r} is not a time; write ISO 8601, e.g. 2026-11-22T14:00Z") from None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
