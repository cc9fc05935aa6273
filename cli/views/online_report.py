"""The report of online runs: a window's population estimate per judge and stratum, and its trend over windows.

``judgeq report RUN`` on an online run prints what its window's traffic
scored, not what the sample did (``ledger.population``): per judge the
weighted mean overall and per stratum with its 95 % interval, beside the
window's counts (seen, filtered out, sampled, p) and the rows written (judged,
errors). ``trend_view`` prints one line per window of a schedule and judge.
Both have a JSON form carrying the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.models import Run
from ledger.population import PopulationEstimate, StratumFigures
from ledger.rows import Progress
from ledger.stats import Estimate
from scheduler.assess import GateOptions
from scheduler.errors import UsageError

from .console import console as _console
from .report import _f, card_json

#: Offline report options an online report has no meaning for, and why.
_OFFLINE_ONLY = {
    "gates": "--gate", "baseline": "--baseline", "by": "--by (an online run is sliced by its strata)",
    "files": "--junit/--markdown",
}

#: The estimate's keys of a stratum without rows (the same keys as one with rows).
_NO_ROWS: dict[str, Any] = {
    "rows": 0, "judged": 0, "errors": 0, "skipped": 0, "binary": None, "mean": None, "ci_low": None, "ci_high": None,
    "interval": None, "se": None, "se_naive": None, "n_clusters": None, "deff": None, "cost_usd": 0.0,
    "cost_per_item_usd": None, "small": False, "unclustered": 0,
}


def check_online_options(run: Run, options: GateOptions) -> None:
    """UsageError naming the first option given that an online run's report does not take."""
    for field, flag in _OFFLINE_ONLY.items():
        if getattr(options, field):
            raise UsageError(f"run {run.id} is an online run (window {run.window}): {flag} is for offline runs; "
                             "its report is the window's estimate per stratum (compare windows with "
                             "`judgeq report --source S --judge J --windows A..B`)")


def figures_json(figures: StratumFigures) -> dict[str, Any]:
    """One stratum (or the whole window) as JSON: its counts, then its rows' estimate."""
    counts = figures.counts
    out: dict[str, Any] = {
        "stratum": figures.stratum,
        "seen": counts.seen if counts else None, "filtered": counts.filtered if counts else None,
        "eligible": figures.eligible, "sampled": counts.sampled if counts else None,
        "enqueued": counts.enqueued if counts else None, "rate": counts.rate if counts else None,
    }
    if figures.card is None:
        return out | _NO_ROWS
    card = card_json(figures.card)
    for key in ("judge", "slice", "latency_p50_s", "latency_p95_s", "wait_p50_s", "wait_p95_s"):
        card.pop(key)
    return out | {"rows": card.pop("n"), "judged": card.pop("ok")} | card


def population_json(estimate: PopulationEstimate) -> dict[str, Any]:
    """One judge's estimate of the window as JSON."""
    return {"judge": estimate.eval, "weighted_by": "1/p", "clustered_by": estimate.clustered_by,
            "overall": figures_json(estimate.overall), "strata": [figures_json(s) for s in estimate.strata],
            "unrepresented": estimate.unrepresented}


def online_report(ledger: Any, run: Run, options: GateOptions, progress: Progress, *, json_out: bool) -> None:
    """Print the report of an online run: JSON (the run payload with ``population``) or one table per judge."""
    from .render import print_json, run_payload

    check_online_options(run, options)
    estimates = ledger.windows.population(run.id, cluster_by=options.cluster_by, min_slice=options.min_slice)
    if json_out:
        payload = run_payload(run, ledger.scores.summary(run.id), progress, complete=progress.complete)
        print_json(payload | {"population": [population_json(e) for e in estimates]})
        return
    console = _console()
    for estimate in estimates:
        population_table(run, estimate, console)
    from .report import note_lines

    for line in note_lines(ledger.scores.summary(run.id)):  # why the errors column is not 0; a provider change
        console.print(line, markup=False, highlight=False)
    skipped = run.meta.get("skipped")
    skipped = {k: v for k, v in skipped.items() if v} if isinstance(skipped, dict) else {}
    if skipped:
        console.print("not judged, as read from the source: "
                      + ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items())))


def population_table(run: Run, estimate: PopulationEstimate, console: Any) -> None:
    """Print one judge's estimate: the whole window, then each stratum, with counts beside the means."""
    from rich.table import Table

    version = (run.judges.get(estimate.eval) or {}).get("version") or estimate.eval
    table = Table(title=f"run {run.id} · {run.dataset_name} · window {run.window} · {run.status} · {version}",
                  title_justify="left")
    for col in ("stratum", "seen", "filtered", "sampled", "p", "judged", "errors", "mean", "95% CI", "clusters"):
        table.add_column(col, justify="left" if col == "stratum" else "right")
    for figures in (estimate.overall, *estimate.strata):
        counts, card = figures.counts, figures.card
        est = card.estimate if card else None
        name = "[bold]all[/bold]" if figures.stratum is None else figures.stratum
        if card is not None and card.small:
            name += " [yellow](small)[/yellow]"
        table.add_row(
            name, *(f"{getattr(counts, k)}" if counts else "–" for k in ("seen", "filtered", "sampled")),
            _f(counts.rate if counts else None, ".3g"), f"{card.ok}" if card else "0",
            (f"[red]{card.errors}[/red]" if card.errors else "0") if card else "0",
            _f(est.mean if est else None, ".4f"), _interval(est),
            f"{est.n_clusters}" if est and est.n_clusters else "–")
    console.print(table)
    console.print(f"population estimate: rows weighted by 1/p; errors clustered by {estimate.clustered_by} (CR1); "
                  "p of 'all' is the fraction of eligible traces sampled")
    if estimate.unrepresented:
        console.print(f"[yellow]not in the estimate (traces but no scored row): "
                      f"{', '.join(estimate.unrepresented)}[/yellow]")


def _interval(est: Estimate | None) -> str:
    return f"{_f(est.lo, '.3f')}–{_f(est.hi, '.3f')}" if est else "–"


# -- the trend over windows ------------------------------------------------------


@dataclass(frozen=True)
class TrendPoint:
    """One window of a trend: one online run's estimate for one judge, over the whole window."""

    window: str
    run_id: str
    judge: str
    judge_version: str | None
    status: str
    figures: StratumFigures
    unrepresented: tuple[str, ...]

    @property
    def estimate(self) -> Estimate | None:
        return self.figures.card.estimate if self.figures.card else None


def trend(ledger: Any, runs: Sequence[Run], cluster_by: str | None = None) -> list[TrendPoint]:
    """The overall estimate of each run (from ``Ledger.windows.online_runs``, in window order), per judge."""
    points: list[TrendPoint] = []
    for run in runs:
        for estimate in ledger.windows.population(run.id, cluster_by=cluster_by):
            version = (run.judges.get(estimate.eval) or {}).get("version")
            points.append(TrendPoint(run.window or "", run.id, estimate.eval, version, run.status, estimate.overall,
                                     tuple(estimate.unrepresented)))
    return points


def trend_json(points: Sequence[TrendPoint]) -> list[dict[str, Any]]:
    """The trend as JSON: one object per window (and judge), with the window's counts and estimate."""
    return [{"window": p.window, "run": p.run_id, "judge": p.judge, "judge_version": p.judge_version,
             "status": p.status, **figures_json(p.figures), "unrepresented": list(p.unrepresented)} for p in points]


def trend_table(points: Sequence[TrendPoint], title: str = "", console: Any = None) -> None:
    """Print the trend: one line per window, oldest first; the judge version where it changes."""
    from rich.table import Table

    console = console or _console()
    versions = len({(p.judge, p.judge_version) for p in points}) > len({p.judge for p in points})
    table = Table(title=title or None, title_justify="left")
    cols = ["window", "judge", *(["version"] if versions else []), "status", "seen", "sampled", "judged", "errors",
            "mean", "95% CI"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("window", "judge", "version", "status") else "right")
    for p in points:
        counts, card, est = p.figures.counts, p.figures.card, p.estimate
        table.add_row(
            p.window, p.judge, *([p.judge_version or "–"] if versions else []), p.status,
            f"{counts.seen}" if counts else "–", f"{counts.sampled}" if counts else "–",
            f"{card.ok}" if card else "0", (f"[red]{card.errors}[/red]" if card.errors else "0") if card else "0",
            _f(est.mean if est else None, ".4f") + (" [yellow]*[/yellow]" if p.unrepresented else ""),
            _interval(est))
    console.print(table)
    if any(p.unrepresented for p in points):
        console.print("[yellow]*[/yellow] some strata had traces but no scored row; the mean is of the others")


def trend_view(ledger: Any, runs: Sequence[Run], *, json_out: bool = False, cluster_by: str | None = None,
               title: str = "") -> list[TrendPoint]:
    """Print the trend of ``runs`` (``Ledger.windows.online_runs``) as a table or JSON; the points printed."""
    from .render import print_json

    points = trend(ledger, runs, cluster_by)
    if json_out:
        print_json({"windows": trend_json(points)})
    else:
        trend_table(points, title)
    return points


def estimate(ledger: Any, run_id: str, *, cluster_by: str | None = None) -> dict[str, Any]:
    """A window's overall estimate for ``judgeq online``'s closing lines: mean, 95 % interval, rows scored."""
    found: dict[str, Any] = {"run": run_id, "n": 0, "mean": None, "low": None, "high": None}
    for judged in ledger.windows.population(run_id, cluster_by=cluster_by):
        card = judged.overall.card
        if card is not None and card.estimate is not None:
            est = card.estimate
            found.update(n=est.n, mean=est.mean, low=est.lo, high=est.hi)
    return found


def show_trend(ledger: Any, name: str, judge: str, windows: str, *, json_out: bool, cluster_by: str | None,
               plot: Path | None = None) -> None:
    """``judgeq report --windows A..B [--plot FILE]``: the trend of a schedule's or source's runs of ``judge``."""
    from online.windows import windows_between

    ids = [w.id for w in windows_between(windows)]
    runs = ledger.windows.online_runs(name, judge, ids)
    if not runs and not json_out:
        raise UsageError(f"no online run of {name!r} with judge {judge!r} in {windows}; see 'judgeq runs'")
    if plot is not None:
        from .trend_plot import check_plot

        check_plot(plot)  # a bad file name or no matplotlib: exit 2 before anything is printed
    title = f"{name} · {judge} · {windows}"
    trend_view(ledger, runs, json_out=json_out, cluster_by=cluster_by, title=title)
    if plot is not None:
        from scheduler.interrupts import say

        from .trend_plot import plot_trend

        drawn = plot_trend(ledger, runs, source=name, judge=judge, title=title, path=plot, cluster_by=cluster_by)
        say(f"trend drawn in {drawn.path}: {len(drawn.panels)} panels, drift alerts marked in "
            f"{len(drawn.marked.get('all', []))} windows")
