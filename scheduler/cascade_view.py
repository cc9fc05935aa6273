"""What ``judgeq report`` shows of a cascade: escalation, cost against all-remote, audited agreement.

**Cost against all-remote**: what the run would have cost had every item gone
to the LLM judge, estimated as the run's mean cost per paid LLM call times
its rows (the items the student kept were never sent, so their price is the
calls' average); ``saved`` is that minus what the run paid.
**Audited agreement**: the share of audited items where the student's label
equals the teacher's, with a 95 % Wilson interval (audited items are a hash
sample of the confident ones, so this is the student's agreement where it
decides alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.stores.teacher import CascadeCounts


def cascade_figures(counts: Sequence[CascadeCounts]) -> list[dict[str, Any]]:
    """Per cascade: the figures of the module docstring, JSON-ready."""
    from ledger.stats import wilson

    out = []
    for c in counts:
        per_call = c.called_usd / c.called if c.called else None
        all_remote = per_call * c.rows if per_call is not None else None
        agreement = c.audit_agreed / c.audited if c.audited else None
        interval = wilson(agreement, c.audited) if agreement is not None else None
        out.append({
            "eval": c.eval, "rows": c.rows, "decided_first": c.first, "escalated": c.then,
            "escalation_rate": c.then / c.rows if c.rows else None,
            "audited": c.audited, "audit_agreement": agreement,
            "audit_agreement_ci": list(interval) if interval is not None else None,
            "cost_usd": c.cost_usd, "all_remote_usd": all_remote,
            "saved_usd": all_remote - c.cost_usd if all_remote is not None else None,
        })
    return out


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
