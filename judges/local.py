"""Local built-in judges: cheap, deterministic heuristics run on the local queue.

Each builtin is a factory (registered with :func:`judges.registry.builtin`)
whose keyword arguments are its parameters and which returns the per-record
function. Verdicts carry a score, a ``pass``/``fail`` label and a short
reason. The fields a builtin cannot judge without are declared (``needs``),
so that submit refuses a dataset lacking them; a record that still reaches a
builtin without them (an older run resumed) gets ``Verdict.failed``. These run at queue speed (>= 10,000 items/s), so the
per-record functions do no more than they must.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from .base import Kind
from .errors import JudgeConfigError
from .record import Record
from .registry import RecordJudge, builtin
from .verdict import Verdict

#: A small English stopword list for ``context_overlap``: words that carry no content.
STOPWORDS: frozenset[str] = frozenset(
    """a an the and or but if then else of to in on at by for with from as into onto about over under
    is are was were be been being am do does did done have has had having will would shall should can
    could may might must this that these those it its it's he she they them their there here we you i me
    my our your his her him us not no yes so than too very just also only what which who whom whose
    when where why how all any both each few more most other some such own same s t""".split()
)
_WORD = re.compile(r"\w+")


class LocalJudge:
    """A judge that applies a per-record function to each record, in process."""

    kind: Kind = "local"

    def __init__(self, name: str, version: str, record_judge: RecordJudge) -> None:
        self.name = name
        self.version = version
        self._judge_one = record_judge

    def judge(self, records: Sequence[Record]) -> list[Verdict]:
        judge_one = self._judge_one
        verdicts: list[Verdict] = []
        for record in records:
            try:
                verdicts.append(judge_one(record))
            except Exception as exc:  # a bug in one builtin must not lose the batch
                verdicts.append(Verdict.failed(record.id, f"{type(exc).__name__}: {exc}"))
        return verdicts

    def __repr__(self) -> str:
        return f"LocalJudge({self.version!r})"


def _verdict(record: Record, passed: bool, reason: str) -> Verdict:
    return Verdict(record.id, 1.0 if passed else 0.0, "pass" if passed else "fail", reason)


def _no_expected(record: Record, builtin_name: str) -> Verdict:
    return Verdict.failed(
        record.id,
        f"record has no 'expected', which {builtin_name} compares against; "
        "add expected (or reference) to the record",
    )


def _fold(text: str, case_sensitive: bool) -> str:
    text = text.strip()
    return text if case_sensitive else text.casefold()


@builtin("exact_match", version="1", needs=("expected",))
def exact_match(case_sensitive: bool = False) -> RecordJudge:
    """Pass when the output equals the expected answer (stripped; case-folded unless case_sensitive)."""

    def judge_one(record: Record) -> Verdict:
        if record.expected is None:
            return _no_expected(record, "exact_match")
        same = _fold(record.output, case_sensitive) == _fold(record.expected, case_sensitive)
        return _verdict(record, same, "output equals expected" if same else "output differs from expected")

    return judge_one


@builtin("contains", version="1", needs=("expected",))
def contains(case_sensitive: bool = False) -> RecordJudge:
    """Pass when the expected answer occurs in the output (stripped; case-folded unless case_sensitive)."""

    def judge_one(record: Record) -> Verdict:
        if record.expected is None:
            return _no_expected(record, "contains")
        needle = _fold(record.expected, case_sensitive)
        if not needle:
            return Verdict.failed(record.id, "record's 'expected' is empty, so contains would always pass; fill it in")
        found = needle in _fold(record.output, case_sensitive)
        return _verdict(record, found, "output contains expected" if found else "output does not contain expected")

    return judge_one


@builtin("regex", version="1")
def regex(pattern: str, ignore_case: bool = False) -> RecordJudge:
    """Pass when the pattern is found in the output (re.search)."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise JudgeConfigError(f"pattern {pattern!r} is not a valid regular expression ({exc}); fix pattern") from None

    def judge_one(record: Record) -> Verdict:
        found = compiled.search(record.output) is not None
        return _verdict(record, found, f"pattern {'found' if found else 'not found'}: {pattern}")

    return judge_one


@builtin("json_valid", version="1")
def json_valid() -> RecordJudge:
    """Pass when the output parses as JSON."""

    def judge_one(record: Record) -> Verdict:
        try:
            json.loads(record.output)
        except ValueError as exc:
            return _verdict(record, False, f"output is not JSON: {exc}")
        return _verdict(record, True, "output is valid JSON")

    return judge_one


def content_words(text: str) -> set[str]:
    """The distinct lowercase word tokens of ``text`` that are not stopwords."""
    return {word for word in _WORD.findall(text.lower()) if word not in STOPWORDS}


@builtin("context_overlap", version="1", needs=("context",))
def context_overlap(threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5) -> RecordJudge:
    """Score the share of the output's distinct content words found in the context; pass at >= threshold."""

    def judge_one(record: Record) -> Verdict:
        context = record.context_text()
        if not context.strip():
            return Verdict.failed(
                record.id,
                "record has no 'context', which context_overlap compares against; "
                "add context (or retrieved_chunks) to the record",
            )
        words = content_words(record.output)
        if not words:
            return Verdict(record.id, 0.0, "fail", "output has no content words")
        shared = len(words & content_words(context))
        score = shared / len(words)
        return Verdict(
            record.id,
            score,
            "pass" if score >= threshold else "fail",
            f"{shared} of {len(words)} content words of the output occur in the context",
        )

    return judge_one


@builtin("noop", version="1")
def noop(delay_s: Annotated[float, Field(ge=0.0, le=60.0)] = 0.0) -> RecordJudge:
    """Always pass with score 1.0: for measuring the queue itself (delay_s simulates a slow judge)."""

    def judge_one(record: Record) -> Verdict:
        return Verdict(record.id, 1.0, "pass", "noop")

    if not delay_s:
        return judge_one  # the benchmark path: nothing but the verdict

    def slow_judge_one(record: Record) -> Verdict:
        time.sleep(delay_s)  # deliberate: stands in for work, in tests of the fleet
        return Verdict(record.id, 1.0, "pass", f"noop after {delay_s:g}s")

    return slow_judge_one
