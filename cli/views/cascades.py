"""The cascades' table of ``judgeq report``: the figures of ``scheduler.cascades``, one row per cascade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_cascades(figures: Sequence[dict[str, Any]]) -> None:
    """The cascades' table (nothing when the run has none)."""
    if not figures:
        return
    from rich.table import Table

    from .console import console

    table = Table(title="cascades", title_justify="left")
    for column in ("judge", "rows", "escalated", "cost", "all-remote (est.)", "saved", "audited",
                   "audit agreement (95% CI)"):
        table.add_column(column)
    for f in figures:
        agreement = "–" if f["audit_agreement"] is None else (
            f"{f['audit_agreement']:.3f} [{f['audit_agreement_ci'][0]:.3f}, {f['audit_agreement_ci'][1]:.3f}]")
        money = [("–" if f[k] is None else f"${f[k]:.4f}") for k in ("cost_usd", "all_remote_usd", "saved_usd")]
        table.add_row(f["eval"], str(f["rows"]), f"{f['escalated']} ({f['escalation_rate']:.1%})", *money,
                      str(f["audited"]), agreement)
    console().print(table)
