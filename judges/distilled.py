"""Distilled judges: a small scikit-learn model trained on an LLM judge's verdicts, run locally.

``[judges.NAME] type = "distilled"`` with ``artifact = "path"`` (relative to
judgeq.toml's folder) names a file ``judgeq distill`` wrote
(:mod:`judges.artifact`). Resolving reads and checks the file and pins its
SHA-256 into the spec, so the judge version derives from the artifact's
content hash, and a worker given another file refuses it. The artifact must
have been trained under the table's name: an artifact of another judge is
refused.

The model reads the judged fields (:data:`FIELDS`) as the columns of
:func:`columns`; training (``scheduler/distill.py``) uses the same function,
so the two cannot drift. A verdict is the most probable class: its label, the
score the teacher gave that label, and the confidence (that class's
probability), which the row's reason and ``confidence`` carry and a cascade
compares with its threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .base import Kind
from .artifact import Artifact, load_artifact
from .record import Record
from .verdict import Verdict

#: The record fields a distilled model reads, in column order.
FIELDS: Final = ("input", "output", "context", "expected")
#: Bumped when the way a distilled judge turns probabilities into verdicts changes.


def columns(records: Sequence[Record]) -> Any:
    """The model's input: one row per record, one text column per field of FIELDS (numpy object array)."""
    import numpy as np

    table = np.empty((len(records), len(FIELDS)), dtype=object)
    for i, record in enumerate(records):
        table[i, 0] = record.input
        table[i, 1] = record.output
        table[i, 2] = record.context_text()
        table[i, 3] = record.expected or ""
    return table


class DistilledJudge:
    """A local judge that asks a distilled model for each record's most probable label."""

    kind: Kind = "local"

    def __init__(self, name: str, version: str, artifact: Artifact) -> None:
        self.name = name
        self.version = version
        self.artifact = artifact
        meta = artifact.meta
        self._scores: dict[str, float] = {str(k): float(v) for k, v in meta["scores"].items()}
        self._classes = [str(c) for c in artifact.model.classes_]
        self._teacher = str(meta.get("teacher", "?"))

    def predict(self, records: Sequence[Record]) -> list[tuple[str, float]]:
        """(label, confidence) per record: the most probable class and its probability."""
        if not records:
            return []
        proba = self.artifact.model.predict_proba(columns(records))
        best = proba.argmax(axis=1)
        return [(self._classes[b], float(proba[i, b])) for i, b in enumerate(best)]

    def judge(self, records: Sequence[Record]) -> list[Verdict]:
        try:
            predicted = self.predict(records)
        except Exception as exc:  # a model that cannot read this batch: visible errors, not a lost batch
            return [Verdict.failed(r.id, f"{type(exc).__name__}: {exc}") for r in records]
        return [self.verdict(record, label, confidence) for record, (label, confidence) in zip(records, predicted)]

    def verdict(self, record: Record, label: str, confidence: float) -> Verdict:
        """The verdict for a prediction: the teacher's score of ``label``, and the confidence."""
        return Verdict(record.id, self._scores[label], label,
                       f"distilled from {self._teacher}: {label} with confidence {confidence:.3f}",
                       confidence=confidence)

    def __repr__(self) -> str:
        return f"DistilledJudge({self.version!r})"


_LOADED: dict[str, Artifact] = {}


def load_checked(name: str, path: str, sha256: str | None) -> Artifact:
    """The artifact of judge ``name`` at ``path`` (with that SHA-256), loaded once per process.

    ArtifactError if it is missing, altered or was trained as another judge.
    """
    from .errors import ArtifactError

    key = f"{path}\0{sha256}"
    artifact = _LOADED.get(key)
    if artifact is None:
        artifact = load_artifact(Path(path), sha256)
        if artifact.name != name:
            raise ArtifactError(
                f"artifact {path!r} was trained as judge {artifact.name!r}, not {name!r}; "
                f"name the table [judges.{artifact.name}] or train one with 'judgeq distill --name {name}'")
        _LOADED[key] = artifact
    return artifact
