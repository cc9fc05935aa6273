"""What answered behind a judge's model alias, said when it changed: ``judgeq report`` and ``judgeq drift``.

A judge version pins what judgeq asks (model alias, prompt, parameters); the
provider's answers name what answered (``scores.provider_model``,
``scores.system_fingerprint``). When those change within a run, or between
the spans a drift check compares, a score's move may be the measurement's,
not the product's: these lines say so beside the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.rows import EvalSummary, ProviderIdentity


def _listed(identities: Sequence[ProviderIdentity]) -> str:
    return ", then ".join(f"{i.text()} on {i.rows:,} rows ({i.first_ts:%Y-%m-%d %H:%M} to {i.last_ts:%H:%M} UTC)"
                          for i in identities)


def provider_lines(summaries: Sequence[EvalSummary]) -> list[str]:
    """One line per eval whose rows name more than one model or fingerprint the provider said answered."""
    return [f"judge {s.eval}: the provider's model changed within the run: {_listed(s.providers)}; scores "
            "before and after may differ for that reason, not the product's" for s in summaries if s.provider_changed]


def span_change(before: Sequence[ProviderIdentity], after: Sequence[ProviderIdentity]) -> str | None:
    """A line when the short span's rows were answered by a model or fingerprint the long span's were not
    (or the other way round); None when both spans name the same ones (or neither names any)."""
    old = {(i.model, i.fingerprint) for i in before}
    new = {(i.model, i.fingerprint) for i in after}
    if not old or not new or old == new:
        return None
    return (f"the provider's model changed between the spans: long {_listed(before)}; short {_listed(after)}; "
            "the drop may be the measurement's")
