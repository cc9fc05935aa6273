"""A cascade: a distilled judge first, its LLM teacher for what the student is unsure of.

For each record the distilled judge (``first``) predicts a label and its
confidence. At ``confidence >= threshold`` its verdict stands (stage
``first``); below, the record escalates to the LLM judge (``then``), whose
verdict is the row's (stage ``then``). A share ``audit`` of the confident
records also goes to the teacher: the student's verdict stands, and the
teacher's label and score are kept beside it (``audit_label``,
``audit_score``) so the student's drift is measured on live traffic. Which
records are audited is a hash of their content (:func:`audited`), so a rerun or
a redelivery audits the same ones.

A cascade is a remote judge: it runs on the remote queue, and the worker's
remote path (circuit, budgets, verdict cache, leases, the fleet's rate
limiter, hand-backs; ``workers/remote.py``) wraps it as it wraps an LLM judge.
Teacher calls go through the rate limiter the teacher was built with. A
teacher call that must wait (a hand-back) defers that record whole; when it
comes back, the student decides again, the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .base import Kind
from .distilled import DistilledJudge
from .record import Record
from .verdict import Verdict

if TYPE_CHECKING:
    from .llm import LlmJudge
    from .retry import Prior


def audited(record: Record, share: float) -> bool:
    """Whether ``record`` is in the audit sample of ``share``: u = blake2b(content) / 2**64 < share."""
    if share <= 0.0:
        return False
    digest = hashlib.blake2b(f"judgeq-audit\0{record.content_hash()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < share


class CascadeJudge:
    """``first`` decides when confident; ``then`` decides the rest and audits a sample (module docstring)."""

    kind: Kind = "remote"

    def __init__(self, name: str, version: str, first: DistilledJudge, then: LlmJudge,
                 threshold: float, audit: float) -> None:
        self.name = name
        self.version = version
        self.first = first
        self.then = then
        self.threshold = threshold
        self.audit = audit

    def judge(self, records: Sequence[Record], *, prior: Mapping[str, Prior] | None = None,
              deadline: float | None = None) -> list[Verdict]:
        """One verdict per record, in order; never raises (see the module docstring)."""
        try:
            predicted = self.first.predict(records)
        except Exception as exc:  # the student cannot read this batch: visible errors, nothing paid
            return [Verdict.failed(r.id, f"{type(exc).__name__}: {exc}", error_kind="internal") for r in records]
        known = prior or {}
        own: list[Verdict] = []
        ask: list[Record] = []
        for record, (label, confidence) in zip(records, predicted):
            verdict = dataclasses.replace(self.first.verdict(record, label, confidence), stage="first")
            own.append(verdict)
            if confidence < self.threshold or audited(record, self.audit):
                ask.append(record)
        answers = dict(zip((r.id for r in ask),
                           self.then.judge(ask, prior={r.id: known[r.id] for r in ask if r.id in known},
                                           deadline=deadline))) if ask else {}
        return [self._merge(student, answers.get(student.trace_id)) for student in own]

    def _merge(self, student: Verdict, teacher: Verdict | None) -> Verdict:
        if teacher is None:
            return student
        confidence = student.confidence
        if not teacher.ended:  # deferred: the whole record comes back later, and is decided again
            return teacher
        if confidence is not None and confidence < self.threshold:  # escalated: the teacher's verdict is the row
            return dataclasses.replace(teacher, stage="then", confidence=confidence)
        paid = dataclasses.replace(student, cost_usd=teacher.cost_usd, tokens_in=teacher.tokens_in,
                                   tokens_out=teacher.tokens_out, latency_s=teacher.latency_s,
                                   wait_s=teacher.wait_s,
                                   attempts=teacher.attempts)
        if teacher.ok:  # audited: the student's verdict stands, the teacher's is kept beside it
            return dataclasses.replace(paid, audit_label=teacher.label, audit_score=teacher.score)
        return dataclasses.replace(paid, reason=f"{student.reason}; audit failed: {teacher.error}")

    def __repr__(self) -> str:
        return f"CascadeJudge({self.version!r})"
