"""``judgeq report … --windows A..B --plot FILE``: the trend as a picture, one panel per slice, drift marked.

Each panel is one slice of the judge's traffic (all traffic first, then each
sampling stratum): per window its population estimate (weighted 1/p) as a
line, and its 95 % interval as a band, from the same estimates the trend
table prints (``ledger.population``). Windows where a drift check alerted
(``drift_checks``: the windows of the alerting checks' short spans) are
marked in red: on the "all" panel for any alert, and on a stratum's panel
for an alert on a slice of the same value (``--by locale`` and strata
``metadata.locale`` name the same slices).

matplotlib is the ``plot`` extra (``pip install 'judgeq[plot]'``), imported
here only, with the Agg backend (no display); without it ``--plot`` is a
usage error that says what to install. The file is written whole or not at
all (a temporary file renamed into place).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from scheduler.errors import UsageError

FORMATS: Final = (".png", ".svg", ".pdf")
#: The most panels one picture holds: all traffic and the strata with the most rows.
MAX_PANELS: Final = 12
ALL: Final = "all"


@dataclass
class Series:
    """One panel's points: window ids and starts, and the estimate (None where the window has no scored row)."""

    windows: list[str] = field(default_factory=list)
    starts: list[datetime] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class Drawn:
    """What the picture shows: its panels (in order) and, per panel, the windows marked as drift alerts."""

    path: Path
    panels: list[str]
    marked: dict[str, list[str]]


def check_plot(path: Path) -> None:
    """UsageError unless the picture's format is one we write (by its suffix) and matplotlib is there."""
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"--plot {path}: give a file ending in {', '.join(FORMATS)}, e.g. trend.png")
    if not path.parent.is_dir():
        raise UsageError(f"--plot {path}: the folder {path.parent} does not exist; create it or pick another")
    _pyplot()


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is judgeq's 'plot' extra: pip install 'judgeq[plot]' "
                         "(or leave out --plot)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series(ledger: Any, runs: Sequence[Any], judge: str, cluster_by: str | None = None) -> dict[str, Series]:
    """Per slice ("all", then strata by name), the estimate of each window of ``runs`` (``Ledger.windows.online_runs``)."""
    from online.windows import parse_window

    out: dict[str, Series] = {ALL: Series()}
    for run in runs:
        for estimate in ledger.windows.population(run.id, cluster_by=cluster_by):
            if estimate.eval != judge:
                continue
            for figures in (estimate.overall, *estimate.strata):
                name = ALL if figures.stratum is None else figures.stratum
                points = out.setdefault(name, Series())
                est = figures.card.estimate if figures.card else None
                points.windows.append(run.window or "")
                points.starts.append(parse_window(run.window or "").start)
                points.mean.append(est.mean if est else math.nan)
                points.lo.append(est.lo if est else math.nan)
                points.hi.append(est.hi if est else math.nan)
                points.rows += est.n if est else 0
    return out


def alerted(ledger: Any, source: str, judge: str, windows: Sequence[str]) -> dict[str, list[str]]:
    """Per panel, the windows among ``windows`` that a recorded drift alert's short span held."""
    shown = set(windows)
    marked: dict[str, set[str]] = {}
    for row in ledger.drift.checks(source, judge, status="alert"):
        hit = shown.intersection(row.short_windows or [])
        if hit:
            marked.setdefault(ALL, set()).update(hit)
            if row.slice_key is not None:
                marked.setdefault(row.slice, set()).update(hit)
    return {name: sorted(found) for name, found in marked.items()}


def plot_trend(ledger: Any, runs: Sequence[Any], *, source: str, judge: str, title: str, path: Path,
               cluster_by: str | None = None) -> Drawn:
    """Draw the trend of ``runs`` into ``path`` (module docstring); what was drawn."""
    check_plot(path)
    plt = _pyplot()
    found = series(ledger, runs, judge, cluster_by)
    strata = sorted((name for name in found if name != ALL), key=lambda n: -found[n].rows)[: MAX_PANELS - 1]
    panels = [ALL, *sorted(strata)]
    marked = alerted(ledger, source, judge, [run.window or "" for run in runs])
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), sharex=True, squeeze=False)
    for ax, name in zip(axes.flat, panels, strict=False):
        points = found[name]
        ax.fill_between(points.starts, points.lo, points.hi, alpha=0.25, color="tab:blue", linewidth=0)
        ax.plot(points.starts, points.mean, marker="o", markersize=3, color="tab:blue")
        for window in marked.get(name, []):
            if window in points.windows:
                i = points.windows.index(window)
                ax.axvline(points.starts[i], color="tab:red", alpha=0.6, linewidth=2)
                ax.plot([points.starts[i]], [points.mean[i]], marker="v", color="tab:red", markersize=8)
        ax.set_title(name if name == ALL else f"{name} ({points.rows} rows)", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7, labelbottom=True)  # every panel, not only the last row
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: weighted mean per window, 95 % band; red: drift alert", fontsize=10)
    fig.tight_layout()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        fig.savefig(temporary)
        os.replace(temporary, path)
    finally:
        plt.close(fig)
        temporary.unlink(missing_ok=True)
    return Drawn(path, panels, {name: marked[name] for name in panels if name in marked})
