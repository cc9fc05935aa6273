"""The figures ``judgeq online`` prints once a window is judged: the population estimate of each judge.

The full report of an online run (per stratum, with counts) is ``judgeq report RUN``.
"""

from __future__ import annotations

from typing import Any, Optional


def estimate(ledger: Any, run_id: str, *, cluster_by: Optional[str] = None) -> dict[str, Any]:
    """The weighted (1/p) mean of the run's scores, its 95 % interval (clustered by session or user), and n."""
    from ledger.stats import estimate_mean

    found: dict[str, Any] = {"run": run_id, "n": 0, "mean": None, "low": None, "high": None}
    for rows in ledger.sampled_rows(run_id, cluster_by=cluster_by).values():
        ok = rows.subset(rows.scored)
        clusters = ok.cluster if ok.cluster is not None and any(c is not None for c in ok.cluster) else None
        result = estimate_mean(ok.score, ok.weight, clusters, df_from_weights=True)
        if result is not None:
            found.update(n=result.n, mean=result.mean, low=result.lo, high=result.hi)
    return found
