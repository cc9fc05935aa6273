"""One drift check against the ledger: pick the two spans' windows, read their rows, slice, test, record.

**The spans.** A check at time T (``--at``, default now) compares

- the **short** span: the windows of the source's online runs that ended
  in (T - short, T], e.g. with hourly windows and ``--short 1h`` the newest
  hour closed by T;
- the **long** baseline: the windows that ended in (T - short - long,
  T - short], i.e. the ``long`` before the short span, not overlapping it.

Windows are the runs' (``Run.window``); a window judged more than once (its
judge version or policy changed) counts with its newest run. The runs'
windows must not be longer than ``short``.

**Slices.** All traffic, and with ``by`` each value of each metadata key
(``locale=de``); a key no row's record has in either span is a usage error,
as is a key with more than ``MAX_SLICES`` values. Rows are the judge's
scored rows (status ok) with their weight 1/p and cluster (session, else
user); each span's rows are summed per cluster once (``online.drift.Moments``).

**Outcome.** ``online.drift.decide`` per slice; the check's status is
``alert`` when a slice alerted, ``no_data`` when either span has no scored
row, else ``ok``. Every check writes its rows to ``drift_checks``
(``Ledger.drift.record``), a no-data check one row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from .drift_config import check_min_drop, check_spans
from .errors import OnlineConfigError
from .windows import Window, format_duration, parse_window, utc

if TYPE_CHECKING:
    from ledger.stores.drift import DriftRows, WindowRun
    from ledger.models import DriftCheck
    from ledger.store import Ledger

    from .drift import SliceDrift, SliceInput

CheckStatus = Literal["alert", "ok", "no_data"]
#: The most values one --by key may have: beyond it the key is an id, not a slice (and the table unreadable).
MAX_SLICES: Final = 200
NO_VALUE: Final = "(none)"


@dataclass(frozen=True)
class DriftQuery:
    """What to check: whose runs (a schedule's, or a source's ad-hoc ones), which judge, which spans and slices."""

    source: str
    judge: str
    short: timedelta
    long: timedelta
    at: datetime
    by: tuple[str, ...] = ()
    min_drop: float = 0.05

    def __post_init__(self) -> None:
        check_spans(self.short, self.long)
        check_min_drop(self.min_drop, "min_drop")


@dataclass(frozen=True)
class Span:
    """The windows of one span, oldest first, with their runs and judge versions."""

    windows: tuple[Window, ...] = ()
    run_ids: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()

    @property
    def start(self) -> datetime | None:
        return self.windows[0].start if self.windows else None

    @property
    def end(self) -> datetime | None:
        return self.windows[-1].end if self.windows else None

    def to_json(self) -> dict[str, Any]:
        return {"windows": [w.id for w in self.windows], "start": _iso(self.start), "end": _iso(self.end),
                "runs": len(self.run_ids), "judge_versions": list(self.versions)}

    def text(self) -> str:
        if not self.windows:
            return "no judged window"
        first, last = self.windows[0], self.windows[-1]
        ids = first.id if first == last else f"{first.id}..{last.id} ({len(self.windows)} windows)"
        return f"{ids}, [{first.start:%Y-%m-%d %H:%M}, {last.end:%Y-%m-%d %H:%M}) UTC"


@dataclass(frozen=True)
class DriftReport:
    """A check's outcome: its query, the two spans, each slice's verdict."""

    query: DriftQuery
    short: Span
    long: Span
    slices: tuple[SliceDrift, ...] = ()
    empty: str = ""  # the span without a scored row, when the windows were there
    provider_note: str | None = None  # the provider's model or fingerprint changed between the spans
    canary_note: str | None = None  # the judge's canary alerted within the spans (judgeq canary check)
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def status(self) -> CheckStatus:
        if not self.slices or all(s.status == "no_data" for s in self.slices if s.key is None):
            return "no_data"
        return "alert" if self.alerts else "ok"

    @property
    def alerts(self) -> list[SliceDrift]:
        return [s for s in self.slices if s.status == "alert"]

    @property
    def version_changed(self) -> bool:
        """The short span was judged by a judge version the baseline never saw: a drop may be the measurement's."""
        return bool(self.short.versions) and not set(self.short.versions) <= set(self.long.versions)

    def no_data_reason(self) -> str:
        q = self.query
        if not self.short.windows or not self.long.windows:
            missing = "short window" if not self.short.windows else "long baseline"
            return (f"no judged window of {q.source!r} with judge {q.judge!r} in the {missing} "
                    f"(short {format_duration(q.short)}, long {format_duration(q.long)}, at {q.at:%Y-%m-%d %H:%M} "
                    "UTC)")
        return f"no scored row of judge {q.judge!r} in the {self.empty or 'short window'} ({self.short.text()})" \
            if self.empty != "long baseline" else \
            f"no scored row of judge {q.judge!r} in the long baseline ({self.long.text()})"

    def headline(self) -> str:
        """One line: what was checked and what came of it (Slack's ``text`` starts with it)."""
        q = self.query
        what = f"drift of {q.judge} on {q.source}"
        if self.status == "no_data":
            return f"{what}: no data ({self.no_data_reason()})"
        if not self.alerts:
            return (f"{what}: no alert; no slice dropped by more than {q.min_drop:g} with one-sided 95 % "
                    f"confidence (Holm over {sum(1 for s in self.slices if s.adjusted is not None)} slices)")
        worst = ", ".join(f"{s.label} {s.long.mean:.3f} -> {s.short.mean:.3f}" for s in self.alerts
                          if s.long is not None and s.short is not None)
        return f"{what}: ALERT: {len(self.alerts)} slice(s) dropped by more than {q.min_drop:g}: {worst}"

    def text(self) -> str:
        """The alert as a message a person reads (the webhook's ``text``)."""
        lines = [self.headline(), f"short {format_duration(self.query.short)}: {self.short.text()}",
                 f"long {format_duration(self.query.long)}: {self.long.text()}"]
        for s in self.alerts:
            assert s.short is not None and s.long is not None
            lines.append(f"• {s.label}: {s.short.mean:.3f} (n={s.short.n}) against {s.long.mean:.3f} "
                         f"(n={s.long.n}), drop {s.drop:.3f}, Holm p={s.adjusted:.2g}")
        if self.version_changed:
            lines.append("note: the short window was judged by a judge version the baseline was not")
        if self.provider_note is not None:
            lines.append(f"note: {self.provider_note}")
        if self.canary_note is not None:
            lines.append(f"note: {self.canary_note}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        q = self.query
        return {"check_id": self.check_id, "status": self.status, "source": q.source, "judge": q.judge,
                "at": _iso(q.at), "short": format_duration(q.short), "long": format_duration(q.long),
                "min_drop": q.min_drop, "by": list(q.by), "confidence": 0.95, "one_sided": True,
                "correction": "holm", "short_span": self.short.to_json(), "long_span": self.long.to_json(),
                "judge_version_changed": self.version_changed, "provider_changed": self.provider_note,
                "canary_moved": self.canary_note,
                "no_data": self.no_data_reason() if self.status == "no_data" else None,
                "slices": [s.to_json() for s in self.slices]}

    def rows(self, via: str) -> list[DriftCheck]:
        """The check as ``drift_checks`` rows: one per slice (a no-data check: one row)."""
        from ledger.models import DriftCheck

        q = self.query
        common: dict[str, Any] = {
            "check_id": self.check_id, "at": q.at, "via": via, "source": q.source, "judge": q.judge,
            "short": format_duration(q.short), "long": format_duration(q.long), "min_drop": q.min_drop,
            "short_start": self.short.start, "short_end": self.short.end, "long_start": self.long.start,
            "long_end": self.long.end, "short_windows": [w.id for w in self.short.windows]}
        if not self.slices:
            return [DriftCheck(**common, slice="all", status="no_data")]
        return [DriftCheck(**common, slice_key=s.key, slice=s.value, status=s.status,
                           short_mean=s.short.mean if s.short else None, short_se=s.short.se if s.short else None,
                           short_n=s.short.n if s.short else 0, long_mean=s.long.mean if s.long else None,
                           long_se=s.long.se if s.long else None, long_n=s.long.n if s.long else 0,
                           score_drop=s.drop, p_value=s.p_value, adjusted_p=s.adjusted)
                for s in self.slices]


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else utc(instant).isoformat()


def _window(window_id: str) -> Window | None:
    try:
        return parse_window(window_id)
    except Exception:  # noqa: BLE001 (a window id this judgeq does not read belongs to no span)
        return None


def spans(runs: Sequence[WindowRun], query: DriftQuery) -> tuple[Span, Span]:
    """The short and long spans' windows (module docstring) of ``runs`` (``Ledger.drift.runs``)."""
    newest: dict[str, tuple[Window, str, str | None]] = {}
    for run in runs:  # oldest first: a later run of a window replaces it
        window = _window(run.window)
        if window is not None:
            newest[window.id] = (window, run.run_id, run.version)
    at = utc(query.at)
    cut = at - query.short
    short = sorted((w for w in newest.values() if cut < w[0].end <= at), key=lambda w: w[0].start)
    long = sorted((w for w in newest.values() if cut - query.long < w[0].end <= cut), key=lambda w: w[0].start)
    too_long = [w for w, _, _ in short + long if w.size.step > query.short]
    if too_long:
        raise OnlineConfigError(f"the runs of {query.source!r} are windows of {too_long[0].size.text}, longer than "
                                f"--short {format_duration(query.short)}; give --short {too_long[0].size.text} or "
                                "longer")

    def span(found: list[tuple[Window, str, str | None]]) -> Span:
        versions = tuple(sorted({v for _, _, v in found if v}))
        return Span(tuple(w for w, _, _ in found), tuple(r for _, r, _ in found), versions)

    return span(short), span(long)


def slice_inputs(short: DriftRows, long: DriftRows, keys: Sequence[str]) -> list[SliceInput]:
    """All traffic, then each key's values (by name, "(none)" last), with each span's Moments."""
    import numpy as np

    from .drift import Moments, SliceInput

    def moments(rows: DriftRows, pick: Any = None) -> Moments:
        y, w = np.asarray(rows.score, dtype=np.float64), np.asarray(rows.weight, dtype=np.float64)
        if pick is None:
            return Moments.of_rows(y, w, rows.cluster)
        return Moments.of_rows(y[pick], w[pick], [rows.cluster[i] for i in pick])

    out = [SliceInput(None, "all", moments(short), moments(long))]
    for key in keys:
        groups: list[dict[str, list[int]]] = []
        for rows in (short, long):
            found: dict[str, list[int]] = {}
            for i, value in enumerate(rows.by[key]):
                found.setdefault(NO_VALUE if value is None else value, []).append(i)
            groups.append(found)
        values = sorted(set(groups[0]) | set(groups[1]), key=lambda v: (v == NO_VALUE, v))
        if len(values) > MAX_SLICES:
            raise OnlineConfigError(f"--by {key}: {len(values)} values; at most {MAX_SLICES} slices per key (a key "
                                    "with more is an id, not a slice); slice by a coarser key")
        for value in values:
            picks = [np.asarray(g.get(value, []), dtype=np.intp) for g in groups]
            out.append(SliceInput(key, value, moments(short, picks[0]), moments(long, picks[1])))
    return out


def check(ledger: Ledger, query: DriftQuery) -> DriftReport:
    """Run one check (module docstring); nothing is recorded here (``record``)."""
    from .drift import decide

    short_span, long_span = spans(ledger.drift.runs(query.source, query.judge), query)
    if not short_span.windows or not long_span.windows:
        return DriftReport(query, short_span, long_span)
    short = ledger.drift.rows(short_span.run_ids, query.judge, query.by)
    long = ledger.drift.rows(long_span.run_ids, query.judge, query.by)
    if query.by and (len(short) or len(long)):
        seen = short.keys_seen | long.keys_seen
        unknown = [key for key in query.by if key not in seen]
        if unknown:
            known = ", ".join(sorted(seen)[:20]) or "none"
            raise OnlineConfigError(f"--by {unknown[0]}: no trace in the two spans has metadata key {unknown[0]!r} "
                                    f"(keys seen: {known}); give one of those")
    if not len(short) or not len(long):
        from .drift import SliceDrift

        empty = SliceDrift(None, "all", None, None, None, None, None, None, None, "no_data")
        return DriftReport(query, short_span, long_span, (empty,),
                           empty="short window" if not len(short) else "long baseline")
    from .providers import span_change

    note = span_change(ledger.scores.providers(long_span.run_ids, query.judge),
                       ledger.scores.providers(short_span.run_ids, query.judge))
    return DriftReport(query, short_span, long_span,
                       tuple(decide(slice_inputs(short, long, query.by), query.min_drop)), provider_note=note,
                       canary_note=_canary_moved(ledger, query.judge, long_span, short_span))


def _canary_moved(ledger: Ledger, judge: str, long: Span, short: Span) -> str | None:
    """A line when the judge's canary alerted between the long span's start and the short span's end."""
    if long.start is None or short.end is None:
        return None
    moved = ledger.canary.moved_between(judge, long.start, short.end)
    if not moved:
        return None
    last = moved[-1]
    agreement = "" if last.agreement is None else f", agreement {last.agreement:.1%} with its reference"
    return (f"the judge's canary moved within the compared spans ({len(moved)} alerting check(s), the last at "
            f"{last.at:%Y-%m-%d %H:%M} UTC{agreement}): the drop may be the measurement's")


def record(ledger: Ledger, report: DriftReport, via: str) -> None:
    """Write the check's rows to ``drift_checks``."""
    ledger.drift.record(report.rows(via))


#: The newest runs beat's check looks at to find the newest judged window.
RECENT_RUNS: Final = 48


def as_of(ledger: Ledger, source: str, judge: str, limit: datetime) -> datetime:
    """The time beat checks as of: the end of the newest window closed by ``limit`` whose run is done.

    A run whose rows are all in is marked done here (nobody waits on the
    runs beat starts; ``Ledger.runs.mark_done_if_complete`` is one conditional
    UPDATE). So a check never looks at a window still being judged, and a
    window judged late is checked by the next tick rather than skipped.
    Without any done run: ``limit`` (the check then says what it found).
    """
    ends = []
    for run in ledger.drift.runs(source, judge)[-RECENT_RUNS:]:
        window = _window(run.window)
        if window is None or window.end > limit:
            continue
        if run.status == "done" or (run.status == "running" and ledger.runs.mark_done_if_complete(run.run_id)):
            ends.append(window.end)
    return max(ends, default=limit)


def tick_summary(reports: Sequence[DriftReport]) -> str:
    """A drift tick's outcome as one line whose first word says what on-call needs: ``ALERT`` when a check
    raised one, else ``OK`` (or ``NO-DATA`` when no check had data), then each judge's headline.

    This is the task's result, which Flower's task list shows and searches, so a tick that alerted is found
    by searching for ``ALERT`` without opening every SUCCESS row.
    """
    if not reports:
        return "OK: nothing to check"
    if any(r.status == "alert" for r in reports):
        word = "ALERT"
    elif all(r.status == "no_data" for r in reports):
        word = "NO-DATA"
    else:
        word = "OK"
    return f"{word}: " + " | ".join(r.headline() for r in reports)


def tick(config: Any, schedule_name: str, ledger: Ledger, now: datetime) -> list[DriftReport]:
    """Beat's drift check of a schedule: each of its judges (``as_of``); recorded, alerts posted.

    An alert goes to the URL
    in the variable ``webhook_env`` names (a warning in the log when the
    variable is unset or the receiver is down: the check stays recorded).
    """
    import logging
    import os

    from .schedules import load_schedules
    from .webhook import post_alert

    log = logging.getLogger("judgeq.drift")
    schedules = load_schedules(config)
    schedule = schedules.get(schedule_name)
    if schedule is None or schedule.drift is None:
        raise OnlineConfigError(f"{config or 'judgeq.toml'}: no [online.{schedule_name}.drift] table; beat checks "
                                "drift only for schedules that have one")
    spec = schedule.drift
    reports = []
    for judge in schedule.judges:
        query = DriftQuery(source=schedule.name, judge=judge, short=spec.short, long=spec.long,
                           at=as_of(ledger, schedule.name, judge, utc(now) - schedule.lateness), by=spec.by,
                           min_drop=spec.min_drop)
        report = check(ledger, query)
        record(ledger, report, "beat")
        reports.append(report)
        if report.status != "alert" or spec.webhook_env is None:
            continue
        url = os.environ.get(spec.webhook_env, "")
        if not url:
            log.warning("drift alert of %s/%s not posted: %s is not set", schedule.name, judge, spec.webhook_env)
            continue
        problem = post_alert(url, report.to_json(), report.text())
        if problem:
            log.warning("drift alert of %s/%s not posted: %s (it is recorded)", schedule.name, judge, problem)
    return reports
