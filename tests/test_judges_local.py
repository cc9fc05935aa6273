"""Local built-in judges: each builtin's verdicts, failed verdicts, and speed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from judges.base import Judge
from judges.config import JudgeConfig
from judges.local import LocalJudge, content_words
from judges.record import Record
from judges.build import build
from judges.types import parse_spec
from judges.verdict import Verdict

pytestmark = pytest.mark.timeout(30)


def local_judge(builtin: str, **params: Any) -> Judge:
    spec = parse_spec("t", {"type": "local", "builtin": builtin, **params})
    return build(JudgeConfig(judges={"t": spec}).resolve("t"))


def one(judge: Judge, **fields: Any) -> Verdict:
    [verdict] = judge.judge([Record(**fields)])
    return verdict


def assert_pass(verdict: Verdict, passed: bool) -> None:
    assert verdict.ok, verdict.error
    assert verdict.label == ("pass" if passed else "fail")
    assert verdict.score == (1.0 if passed else 0.0)
    assert verdict.reason


# -- exact_match, contains ---------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected", "passed"),
    [("Paris", "Paris", True), ("  paris \n", "PARIS", True), ("Paris.", "Paris", False), ("", "", True)],
)
def test_exact_match_strips_and_case_folds(output: str, expected: str, passed: bool) -> None:
    assert_pass(one(local_judge("exact_match"), output=output, expected=expected), passed)


def test_exact_match_can_be_case_sensitive() -> None:
    judge = local_judge("exact_match", case_sensitive=True)
    assert_pass(one(judge, output="Paris", expected="paris"), False)
    assert_pass(one(judge, output=" Paris ", expected="Paris"), True)


@pytest.mark.parametrize("builtin", ["exact_match", "contains"])
def test_missing_expected_is_a_failed_verdict_not_a_score(builtin: str) -> None:
    verdict = one(local_judge(builtin), id="r1", output="Paris")
    assert not verdict.ok and verdict.score is None and verdict.trace_id == "r1"
    assert verdict.error is not None and verdict.error.startswith("record has no 'expected'")


def test_contains() -> None:
    judge = local_judge("contains")
    assert_pass(one(judge, output="The capital is PARIS, France.", expected="paris"), True)
    assert_pass(one(judge, output="The capital is Lyon.", expected="paris"), False)
    assert_pass(one(local_judge("contains", case_sensitive=True), output="PARIS", expected="paris"), False)
    empty = one(judge, output="anything", expected="  ")
    assert not empty.ok and "empty" in (empty.error or "")


# -- regex, json_valid --------------------------------------------------------------


def test_regex_searches_the_output() -> None:
    judge = local_judge("regex", pattern=r"\b\d{4}-\d{2}-\d{2}\b")
    assert_pass(one(judge, output="It shipped on 2024-03-01."), True)
    assert_pass(one(judge, output="It shipped in March."), False)
    assert_pass(one(local_judge("regex", pattern="^yes", ignore_case=True), output="YES, it is"), True)


@pytest.mark.parametrize(
    ("output", "passed"),
    [('{"a": [1, 2]}', True), ("[1, 2]", True), ("42", True), ("{'a': 1}", False), ("", False), ('{"a": 1', False)],
)
def test_json_valid(output: str, passed: bool) -> None:
    assert_pass(one(local_judge("json_valid"), output=output), passed)


# -- context_overlap ---------------------------------------------------------------


def test_content_words_drop_stopwords_and_case() -> None:
    assert content_words("The Eiffel Tower is in PARIS, and it is tall.") == {"eiffel", "tower", "paris", "tall"}


def test_context_overlap_scores_the_share_of_content_words_in_the_context() -> None:
    judge = local_judge("context_overlap")
    context = ["The Eiffel Tower is in Paris.", "It was finished in 1889."]
    full = one(judge, output="The Eiffel Tower was finished in 1889.", context=context)
    assert full.score == 1.0 and full.label == "pass"
    half = one(judge, output="Eiffel Tower painted green", context=context)  # eiffel, tower of 4
    assert half.score == 0.5 and half.label == "pass"
    low = one(judge, output="Tower built by aliens", context=context)  # tower of 3
    assert low.score == pytest.approx(1 / 3) and low.label == "fail"
    assert "1 of 3" in low.reason


def test_context_overlap_threshold_parameter() -> None:
    context = "Eiffel Tower Paris"
    verdict = one(local_judge("context_overlap", threshold=0.9), output="Eiffel Tower painted green", context=context)
    assert verdict.score == 0.5 and verdict.label == "fail"


def test_context_overlap_without_context_fails_and_empty_output_scores_zero() -> None:
    judge = local_judge("context_overlap")
    contexts: list[str | list[str] | None] = [None, "", []]
    for context in contexts:
        verdict = one(judge, output="Paris", context=context)
        assert not verdict.ok and "no 'context'" in (verdict.error or "")
    empty = one(judge, output="", context="Paris")
    assert empty.ok and empty.score == 0.0 and empty.label == "fail"
    only_stopwords = one(judge, output="it is the one", context="Paris")
    assert only_stopwords.score == 0.0


# -- noop and the LocalJudge wrapper ----------------------------------------------------


def test_noop_passes_everything_in_order() -> None:
    records = [Record(id=str(i), output="x") for i in range(5)]
    verdicts = local_judge("noop").judge(records)
    assert [v.trace_id for v in verdicts] == [r.id for r in records]
    assert all(v.score == 1.0 and v.label == "pass" for v in verdicts)


def test_noop_can_simulate_a_slow_judge() -> None:
    records = [Record(id=str(i), output="x") for i in range(3)]
    started = time.perf_counter()
    verdicts = local_judge("noop", delay_s=0.05).judge(records)
    assert time.perf_counter() - started >= 0.15
    assert all(v.ok and v.label == "pass" for v in verdicts)
    assert local_judge("noop").version != local_judge("noop", delay_s=0.05).version


def test_a_crashing_record_function_fails_only_that_record() -> None:
    def fragile(record: Record) -> Verdict:
        if record.output == "boom":
            raise RuntimeError("kaboom")
        return Verdict(record.id, 1.0, "pass", "fine")

    judge = LocalJudge("fragile", "fragile@000000000000", fragile)
    ok, bad = judge.judge([Record(id="a", output="fine"), Record(id="b", output="boom")])
    assert ok.ok and bad.error == "RuntimeError: kaboom" and bad.trace_id == "b"
