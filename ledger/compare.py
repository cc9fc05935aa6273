"""Paired comparison of two runs: their rows joined by trace id, per eval and per slice.

Only items that both runs scored (status ok, with a score) are paired; the
delta is ``candidate - baseline`` per item, estimated by ``ledger.stats.paired_delta``
with the baseline row's weight and, with ``--cluster-by``, the candidate's
cluster key (the baseline's where the candidate has none). Nothing is
dropped silently: items with rows in only one run, and items both runs have
but one could not score (an error or a skip), are listed by id.

Flips: for pass/fail judges the items that went from pass to fail (``worse``)
and from fail to pass (``better``); for numeric scales the items whose score
went down or up, the largest change first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ledger.frames import EvalRows
from ledger.scorecard import MIN_SLICE, NO_VALUE, slices_of
from ledger.stats import Estimate, PairedTest, is_binary, paired_delta


@dataclass(frozen=True)
class Flip:
    """One item whose score changed between the runs."""

    trace_id: str
    base: float
    cand: float
    excerpt: str = ""


@dataclass(frozen=True)
class Paired:
    """The paired figures over one set of items (the whole eval, or one slice)."""

    slice: str | None
    n: int
    binary: bool
    base_mean: float | None
    cand_mean: float | None
    estimate: Estimate | None  # of the delta, candidate - baseline
    test: PairedTest | None
    small: bool = False


@dataclass(frozen=True)
class EvalComparison:
    """One eval compared across two runs."""

    eval: str
    overall: Paired
    slices: list[Paired] = field(default_factory=list)
    worse: list[Flip] = field(default_factory=list)
    better: list[Flip] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_cand: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)  # in both runs, not scored in one of them


def _paired(name: str | None, b: np.ndarray, c: np.ndarray, w: np.ndarray, clusters: list[str | None] | None,
            binary: bool, min_slice: int) -> Paired:
    result = paired_delta(b, c, w, clusters, binary=binary)
    if result is None:
        return Paired(name, 0, binary, None, None, None, None, small=name is not None)
    estimate, test = result
    base_mean = float((w * b).sum() / w.sum())
    return Paired(name, int(b.size), binary, base_mean, base_mean + estimate.mean, estimate, test,
                  small=name is not None and int(b.size) < min_slice)


def compare_eval(base: EvalRows, cand: EvalRows, *, by: bool = False, clustered: bool = False,
                 min_slice: int = MIN_SLICE) -> EvalComparison:
    """Pair ``base`` and ``cand`` (the same eval of two runs) by trace id."""
    b_index = {t: i for i, t in enumerate(base.trace_ids)}
    c_index = {t: i for i, t in enumerate(cand.trace_ids)}
    b_ok, c_ok = base.scored, cand.scored
    pairs: list[tuple[int, int]] = []
    unpaired: list[str] = []
    for t, ci in c_index.items():
        bi = b_index.get(t)
        if bi is None:
            continue
        if b_ok[bi] and c_ok[ci]:
            pairs.append((bi, ci))
        else:
            unpaired.append(t)
    only_base = sorted(set(b_index) - set(c_index))
    only_cand = sorted(set(c_index) - set(b_index))
    bi_arr = np.array([p[0] for p in pairs], dtype=np.intp)
    ci_arr = np.array([p[1] for p in pairs], dtype=np.intp)
    b, c, w = base.score[bi_arr], cand.score[ci_arr], base.weight[bi_arr]
    binary = is_binary(base.score[b_ok], cand.score[c_ok])

    def pick(attr: str) -> list[str | None] | None:
        cv, bv = getattr(cand, attr), getattr(base, attr)
        if cv is None and bv is None:
            return None
        return [(cv[ci] if cv is not None else None) or (bv[bi] if bv is not None else None) for bi, ci in pairs]

    clusters = pick("cluster") if clustered else None
    overall = _paired(None, b, c, w, clusters, binary, min_slice)
    slices: list[Paired] = []
    labels = pick("by") if by else None
    if labels is not None:
        names = np.array([NO_VALUE if v is None else v for v in labels], dtype=object)
        for value in slices_of(labels):
            m = names == value
            sub_clusters = None if clusters is None else [clusters[i] for i in np.flatnonzero(m)]
            slices.append(_paired(value, b[m], c[m], w[m], sub_clusters, binary, min_slice))
    ids = [cand.trace_ids[ci] for ci in ci_arr]
    delta = c - b
    order = np.argsort(delta, kind="stable")  # most negative first
    worse = [Flip(ids[i], float(b[i]), float(c[i])) for i in order if delta[i] < 0]
    better = [Flip(ids[i], float(b[i]), float(c[i])) for i in order[::-1] if delta[i] > 0]
    return EvalComparison(cand.eval, overall, slices, worse, better, only_base, only_cand, sorted(unpaired))


def compare_runs(base: dict[str, EvalRows], cand: dict[str, EvalRows], *, by: bool = False,
                 clustered: bool = False, min_slice: int = MIN_SLICE) -> list[EvalComparison]:
    """Every eval the two runs share, compared (ordered by eval name)."""
    return [compare_eval(base[name], cand[name], by=by, clustered=clustered, min_slice=min_slice)
            for name in sorted(set(base) & set(cand))]


def with_excerpts(comparison: EvalComparison, excerpts: dict[str, str]) -> EvalComparison:
    """The comparison with each flip's excerpt filled in from ``excerpts`` (trace id -> text)."""
    return replace(
        comparison,
        worse=[replace(f, excerpt=excerpts.get(f.trace_id, "")) for f in comparison.worse],
        better=[replace(f, excerpt=excerpts.get(f.trace_id, "")) for f in comparison.better],
    )
