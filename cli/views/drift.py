"""``judgeq drift``'s table: the two spans, one line per slice, and the verdict (``online.drift_check``'s report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .console import console as _console
from .render import cell
from .report import _f

if TYPE_CHECKING:
    from online.drift_check import DriftReport


def show_drift(report: DriftReport, console: Any = None) -> None:
    """Print the check: the two spans, one line per slice, and the verdict."""
    from rich.table import Table

    from online.windows import format_duration

    console = console or _console()
    q = report.query
    console.print(f"drift of [bold]{q.judge}[/bold] on [bold]{q.source}[/bold] at {q.at:%Y-%m-%d %H:%M} UTC")
    console.print(f"  short {format_duration(q.short)}: {report.short.text()}")
    console.print(f"  long {format_duration(q.long)}: {report.long.text()}")
    if report.status == "no_data":
        console.print(f"no data: {report.no_data_reason()}; nothing to compare, no alert")
        return
    table = Table(title_justify="left")
    for col in ("slice", "status", "short mean", "short n", "long mean", "long n", "drop", "p", "Holm p",
                "detectable"):
        table.add_column(col, justify="left" if col in ("slice", "status") else "right")
    style = {"alert": "[bold red]alert[/bold red]", "ok": "ok", "too_small": "[yellow]too small[/yellow]",
             "no_data": "[yellow]no data[/yellow]"}
    for s in report.slices:
        table.add_row(s.label, style[s.status], _f(s.short.mean if s.short else None, ".4f"),
                      f"{s.short.n}" if s.short else "0", _f(s.long.mean if s.long else None, ".4f"),
                      f"{s.long.n}" if s.long else "0", _f(s.drop, "+.4f"), _f(s.p_value, ".2g"),
                      _f(s.adjusted, ".2g"), _f(s.detectable, ".3f"))
    console.print(table)
    console.print(f"drop = long mean - short mean (weighted 1/p, errors clustered by session); alert when the drop "
                  f"exceeds {q.min_drop:g} with one-sided 95 % confidence, Holm-corrected; 'detectable' is the drop "
                  "a slice flags half of the time; too small: fewer than 30 rows or 10 sessions")
    if report.version_changed:
        console.print("[yellow]the short window was judged by a judge version the baseline was not: a drop may be "
                      "the measurement's[/yellow]")
    for note in (report.provider_note, report.canary_note):
        if note is not None:
            console.print(f"[yellow]{cell(note)}[/yellow]")
    console.print(("[bold red]" if report.alerts else "") + report.headline() + ("[/bold red]" if report.alerts
                                                                                  else ""))
