"""The figures ``judgeq report`` shows of a cascade: escalation, cost against all-remote, audited agreement.

**Cost against all-remote**: what the run would have cost had every item gone
to the LLM judge, estimated as the run's mean cost per paid LLM call times
its rows (the items the student kept were never sent, so their price is the
calls' average); ``saved`` is that minus what the run paid.
**Audited agreement**: the share of audited items where the student's label
equals the teacher's, with a 95 % Wilson interval (audited items are a hash
sample of the confident ones, so this is the student's agreement where it
decides alone). Its table is ``cli.views.cascades``.
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

