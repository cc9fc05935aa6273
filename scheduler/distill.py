"""Training a distilled judge on a teacher's verdicts in the ledger (``judgeq distill``).

**Data.** The teacher's ``ok`` rows of its *current* version (as judgeq.toml
resolves it: a student of an older prompt would be a student of another
judge) in the runs asked for, each with its item's record. Rows of other
versions, error and skipped rows are counted and left out.

**Classes.** The teacher's labels (``pass``/``fail``, or any label set). A
teacher on a numeric scale without labels is bucketed by its normalised score
(two decimals, so a 1-5 scale gives its five points): a classifier, not a
regression, because the cascade needs a confidence per verdict, which a
class probability gives directly. A class's score is the median of the
teacher's scores for it.

**Model.** Each judged field (input, output, context, expected) is hashed on
its own (``HashingVectorizer``, words and word pairs, 2**16 features each, so
"sorry" in the output and in the input are different features); a
``LogisticRegression`` (the saga solver: sparse, one pass per epoch) reads them. Hashing keeps no vocabulary, so the model
stays a few arrays (no strings to trust on load) and fits 100k rows on one
core in a minute or two. Logistic regression minimises log loss, so its
probabilities are calibrated by construction; the expected calibration error
on the holdout (ECE, 10 bins of the top class's probability) is reported to
show it, rather than stacking a second calibrator that would need its own data.

**Holdout.** 20 % of the clusters (the row's session or user; the trace
itself when unknown), by ``GroupShuffleSplit``, so near-duplicate turns of one
session are never on both sides. The shipped model is the one trained on the
other 80 %, so the metrics describe exactly it.

**Threshold.** The lowest confidence t such that, on the holdout, the items
with confidence >= t agree with the teacher on at least the target share; the
share below t is what a cascade would escalate. If no t reaches the target,
t = 1.0 (escalate everything) and ``target_reached`` is false.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from judges.record import CLUSTER_KEYS, Record

from .errors import TrainingDataError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ledger.store import Ledger
    from ledger.stores.teacher import VerdictRow

    from .settings import CliSettings

#: Fewest teacher verdicts per class to train on (and at least one cluster of each in the holdout).
MIN_PER_CLASS: Final = 20
HOLDOUT_SHARE: Final = 0.2
HASH_FEATURES: Final = 2**16
ECE_BINS: Final = 10
SEED: Final = 0
#: Inverse regularisation strength: on the test rule's data (600 to 20k rows) C=30 gave the lowest calibration
#: error and C=4 an underconfident model (ECE 0.18 at 600 rows); more rows need less of it.
REGULARISATION_C: Final = 30.0
MAX_ITER: Final = 300


@dataclass
class TrainingSet:
    """The teacher's usable verdicts and what was left out."""

    teacher: str
    teacher_version: str
    records: list[Record] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    left_out: Counter[str] = field(default_factory=Counter)

    def add(self, row: VerdictRow) -> None:
        if row.judge_version != self.teacher_version:
            self.left_out["other version"] += 1
        elif row.status != "ok" or row.score is None:
            self.left_out[f"status {row.status}"] += 1
        elif row.record is None:
            self.left_out["no stored item"] += 1
        else:
            record = Record.model_validate(row.record)
            label = row.label if row.label is not None else f"{row.score:.2f}"
            meta = record.metadata
            cluster = row.cluster or next((str(meta[k]) for k in CLUSTER_KEYS if meta.get(k) is not None), None)
            self.records.append(record)
            self.labels.append(label)
            self.groups.append(cluster or f"trace:{row.trace_id}")
            self.scores[label].append(float(row.score))

    def check(self, where: str) -> None:
        """TrainingDataError unless there are at least MIN_PER_CLASS verdicts in each of two classes or more."""
        counts = Counter(self.labels)
        if not counts:
            found = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items())) or "no rows at all"
            hint = ("judge a dataset with it first (judgeq submit FILE --judge "
                    f"{self.teacher}) or pick other runs")
            if self.left_out and set(self.left_out) <= {"status error", "status skipped"}:
                raise TrainingDataError(f"teacher {self.teacher!r} has errors only in {where} ({found}); "
                                        f"nothing to learn from: fix its errors (judgeq report RUN) and {hint}")
            raise TrainingDataError(f"teacher {self.teacher!r} ({self.teacher_version}) has no ok rows in {where} "
                                    f"({found}); {hint}")
        if len(counts) < 2:
            (only, n), = counts.items()
            raise TrainingDataError(f"teacher {self.teacher!r} gave one label only ({only!r}, {n} rows) in {where}; "
                                    "a classifier needs two: add runs where it also said something else")
        few = {label: n for label, n in counts.items() if n < MIN_PER_CLASS}
        if few:
            listed = ", ".join(f"{label!r}: {n}" for label, n in sorted(few.items()))
            raise TrainingDataError(f"teacher {self.teacher!r} has too few verdicts of some labels in {where} "
                                    f"({listed}; at least {MIN_PER_CLASS} each): add runs")


@dataclass(frozen=True)
class Trained:
    """A fitted pipeline and the metadata stored with it."""

    model: Any
    meta: dict[str, Any]


def distill_judge(settings: CliSettings, teacher: str, name: str, *, runs: Sequence[str], source: str | None,
                  windows: str | None, target: float, out: Path,
                  say: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    """``judgeq distill``: train ``name`` on the teacher's current verdicts and write its artifact, whole.

    The runs are ``runs`` (ids, or comma-separated lists of them), else the
    online runs of ``source`` over ``windows``, else every run of the teacher.
    Everything is checked before the artifact is written (``TrainingDataError``,
    ``RunNotFound``). Returns its path and metadata.
    """
    from judges.artifact import write_artifact
    from judges.config import load_config

    resolved = load_config(settings.config).resolve(teacher, check_env=False)
    ledger = settings.ledger()
    run_ids, where = _runs(ledger, teacher, runs, source, windows)
    say(f"reading {teacher}'s verdicts ({resolved.version}) in {where}")
    data = collect(ledger.teacher.verdict_rows(teacher, run_ids), teacher, resolved.version)
    data.check(where)
    trained = train(data, target, say)
    meta = {**trained.meta, "name": name, "runs": run_ids[:1000], "source": source, "windows": windows}
    return write_artifact(out, name, trained.model, meta), meta


def _runs(ledger: Ledger, teacher: str, runs: Sequence[str], source: str | None,
          windows: str | None) -> tuple[list[str], str]:
    """The run ids to learn from and how to name them in messages; RunNotFound for an unknown run."""
    if runs:
        ids = [r.strip() for value in runs for r in value.split(",") if r.strip()]
        for run_id in ids:
            ledger.runs.get_run(run_id)
        return ids, f"runs {', '.join(ids[:5])}{' …' if len(ids) > 5 else ''}"
    if source is not None and windows is not None:
        from online.windows import windows_between

        found = ledger.windows.online_runs(source, teacher, [w.id for w in windows_between(windows)])
        return [run.id for run in found], f"{source}'s windows {windows}"
    found_all = [run.id for run in ledger.runs.list_runs(limit=1_000_000) if teacher in run.judges]
    return found_all, "the ledger's runs"


def collect(rows: Iterable[VerdictRow], teacher: str, teacher_version: str) -> TrainingSet:
    """The training set of ``rows`` (see the module docstring)."""
    data = TrainingSet(teacher=teacher, teacher_version=teacher_version)
    for row in rows:
        data.add(row)
    return data


def pipeline() -> Any:
    """The untrained model: per-field hashed words and word pairs, then logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from judges.artifact import TEXT_READING
    from judges.distilled import FIELDS

    features = ColumnTransformer([
        (name, HashingVectorizer(**TEXT_READING, n_features=HASH_FEATURES, alternate_sign=False), i)
        for i, name in enumerate(FIELDS)
    ])
    return Pipeline([("features", features), ("model", LogisticRegression(C=REGULARISATION_C, solver="saga",
                                                                          max_iter=MAX_ITER))])


def train(data: TrainingSet, target: float, say: Callable[[str], None] = lambda _: None) -> Trained:
    """Split by cluster, fit, measure on the holdout and propose the threshold; TrainingDataError if it cannot."""
    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GroupShuffleSplit

    from judges.distilled import FIELDS, columns

    table = columns(data.records)
    labels = np.asarray(data.labels, dtype=object)
    groups = np.asarray(data.groups, dtype=object)
    n_groups = len(set(data.groups))
    if n_groups < 2:
        raise TrainingDataError(f"teacher {data.teacher!r}'s rows all come from one session or user; a holdout "
                                "split by cluster needs at least two: add runs")
    split = GroupShuffleSplit(n_splits=1, test_size=HOLDOUT_SHARE, random_state=SEED)
    train_idx, hold_idx = next(split.split(table, labels, groups))
    missing = sorted(set(data.labels) - set(labels[train_idx]))
    if missing:
        raise TrainingDataError(f"after holding out 20 % of the clusters, no training rows are left for "
                                f"{missing}; add runs with more sessions or users giving those labels")
    say(f"training on {len(train_idx):,} rows, holding out {len(hold_idx):,} ({n_groups:,} clusters)")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # saga's "max_iter reached" is kept in the metadata
        warnings.simplefilter("always", ConvergenceWarning)
        model = pipeline().fit(table[train_idx], labels[train_idx])
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    fit_s = time.perf_counter() - started
    say(f"fitted in {fit_s:.1f}s; measuring on the holdout")
    proba = model.predict_proba(table[hold_idx])
    classes = [str(c) for c in model.classes_]
    metrics = holdout_metrics(labels[hold_idx], proba, classes, target)
    counts = Counter(data.labels)
    meta = {
        "teacher": data.teacher,
        "teacher_version": data.teacher_version,
        "fields": list(FIELDS),
        "labels": classes,
        "scores": {label: float(median(data.scores[label])) for label in classes},
        "class_counts": {label: counts[label] for label in classes},
        "rows": {"total": len(labels), "train": len(train_idx), "holdout": len(hold_idx),
                 "left_out": dict(data.left_out)},
        "features": f"per field: hashed words and word pairs, {HASH_FEATURES} features",
        "model": f"LogisticRegression(C={REGULARISATION_C:g}, solver=saga)",
        "converged": converged,
        "sklearn": sklearn.__version__,
        "fit_s": round(fit_s, 3),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **metrics,
    }
    return Trained(model=model, meta=meta)


def holdout_metrics(truth: npt.NDArray[Any], proba: npt.NDArray[np.float64], classes: Sequence[str],
                    target: float) -> dict[str, Any]:
    """Accuracy, Cohen's kappa, per-class precision and recall, ECE, and the threshold for ``target``."""
    import numpy as np
    from sklearn.metrics import accuracy_score, cohen_kappa_score, precision_recall_fscore_support

    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    confidence = proba.max(axis=1)
    correct = predicted == truth
    precision, recall, _, support = precision_recall_fscore_support(truth, predicted, labels=list(classes),
                                                                    zero_division=0)
    threshold, agreement, escalated, reached = propose_threshold(confidence, correct, target)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "kappa": float(cohen_kappa_score(truth, predicted)),
        "per_class": {label: {"precision": float(p), "recall": float(r), "support": int(s)}
                      for label, p, r, s in zip(classes, precision, recall, support)},
        "ece": expected_calibration_error(confidence, correct),
        "target_agreement": target,
        "threshold": threshold,
        "agreement_at_threshold": agreement,
        "escalation_share": escalated,
        "target_reached": reached,
    }


def expected_calibration_error(confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_],
                               bins: int = ECE_BINS) -> float:
    """ECE: the share-weighted mean |accuracy - mean confidence| over equal-width confidence bins."""
    import numpy as np

    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def propose_threshold(confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_],
                      target: float) -> tuple[float, float, float, bool]:
    """(threshold, agreement at or above it, share below it, whether the target was reached).

    The lowest threshold whose confident set (confidence >= threshold) agrees
    with the teacher on at least ``target``: the most items kept local.
    """
    import numpy as np

    n = len(confidence)
    if n == 0:
        return 1.0, 0.0, 1.0, False
    order = np.argsort(-confidence, kind="stable")
    conf = confidence[order]
    agree = np.cumsum(correct[order]) / np.arange(1, n + 1)
    ends = np.flatnonzero(np.r_[conf[1:] != conf[:-1], True])  # the last index of each run of equal confidence
    good = ends[agree[ends] >= target]
    if len(good) == 0:
        return 1.0, float(correct[confidence >= 1.0].mean()) if (confidence >= 1.0).any() else 0.0, \
            float((confidence < 1.0).mean()), False
    k = int(good.max())
    return float(conf[k]), float(agree[k]), float((n - k - 1) / n), True
