"""Reading verdicts out of model text: tolerant of wrapping, strict about meaning."""

from __future__ import annotations

import pytest

from judges.errors import JudgeAnswerError, JudgeCallError
from judges.parse import find_json_object, parse_answer

pytestmark = pytest.mark.timeout(10)

LABELS = {"pass": 1.0, "fail": 0.0}


@pytest.mark.parametrize(
    "text",
    [
        '{"label": "pass", "score": 1, "reason": "supported"}',
        '  \n{"label": "pass", "reason": "supported"}\n',
        '```json\n{"label": "pass", "reason": "supported"}\n```',
        '```\n{"label": "pass", "reason": "supported"}\n```',
        'Here is my verdict:\n```json\n{"label": "pass", "reason": "supported"}\n```\nHope that helps!',
        'Sure. {"label": "pass", "reason": "supported"} That is all.',
        '{"Label": "PASS", "Reason": "supported"}',
        'Thinking {not json} then {"label": "Pass", "reason": "supported"}',
    ],
)
def test_label_answers_in_many_wrappings(text: str) -> None:
    answer = parse_answer(text, labels=LABELS)
    assert (answer.score, answer.label, answer.reason) == (1.0, "pass", "supported")


def test_braces_inside_strings_do_not_confuse_the_search() -> None:
    text = 'Verdict: {"label": "fail", "reason": "the answer says {x} = {y} }"}'
    answer = parse_answer(text, labels=LABELS)
    assert answer.label == "fail" and answer.score == 0.0 and answer.reason == "the answer says {x} = {y} }"


def test_custom_labels_map_to_their_scores() -> None:
    labels = {"yes": 1.0, "partly": 0.5, "no": 0.0}
    assert parse_answer('{"label": "Partly"}', labels=labels).score == 0.5
    assert parse_answer('{"label": "Partly"}', labels=labels).label == "partly"


def test_label_mode_ignores_a_contradicting_score() -> None:
    answer = parse_answer('{"label": "fail", "score": 1}', labels=LABELS)
    assert answer.score == 0.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("I think it is fine.", "no JSON object"),
        ("", "no JSON object"),
        ("[1, 2, 3]", "no JSON object"),
        ('{"label": "maybe", "reason": "?"}', "label 'maybe', which is not one of pass, fail"),
        ('{"score": 1, "reason": "no label"}', "no 'label'"),
        ('{"label": 1}', "no 'label'"),
        ('{"label": "pass"', "no JSON object"),
    ],
)
def test_unusable_label_answers_raise_answer_errors(text: str, needle: str) -> None:
    with pytest.raises(JudgeAnswerError, match=needle) as info:
        parse_answer(text, labels=LABELS)
    assert isinstance(info.value, JudgeCallError)  # retryable, and recorded on the row if it persists


@pytest.mark.parametrize(
    ("text", "score", "label"),
    [
        ('{"score": 1, "reason": "r"}', 0.0, "1"),
        ('{"score": 5, "reason": "r"}', 1.0, "5"),
        ('{"score": 4, "reason": "r"}', 0.75, "4"),
        ('{"score": 2.5}', 0.375, "2.5"),
        ('{"score": "4"}', 0.75, "4"),
        ('{"score": "4/5"}', 0.75, "4"),
        ('```json\n{"Score": 3}\n```', 0.5, "3"),
    ],
)
def test_scale_answers_are_checked_and_normalised(text: str, score: float, label: str) -> None:
    answer = parse_answer(text, scale=(1.0, 5.0))
    assert answer.score == pytest.approx(score) and answer.label == label


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"score": 6}', "outside the scale"),
        ('{"score": 0}', "outside the scale"),
        ('{"score": "high"}', "no numeric 'score'"),
        ('{"score": true}', "no numeric 'score'"),
        ('{"label": "pass"}', "no numeric 'score'"),
        ('{"score": NaN}', "no numeric 'score'"),
    ],
)
def test_unusable_scale_answers_raise(text: str, needle: str) -> None:
    with pytest.raises(JudgeAnswerError, match=needle):
        parse_answer(text, scale=(1.0, 5.0))


def test_reason_falls_back_to_explanation_and_is_stripped() -> None:
    assert parse_answer('{"label": "pass", "explanation": "  fine  "}', labels=LABELS).reason == "fine"
    assert parse_answer('{"label": "pass"}', labels=LABELS).reason == ""


def test_the_first_object_wins() -> None:
    assert find_json_object('{"label": "pass"} and later {"label": "fail"}') == {"label": "pass"}


def test_long_garbage_is_excerpted_in_the_error() -> None:
    with pytest.raises(JudgeAnswerError) as info:
        parse_answer("blah " * 1000, labels=LABELS)
    assert len(str(info.value)) < 300


def test_exactly_one_of_labels_and_scale() -> None:
    with pytest.raises(ValueError):
        parse_answer('{"label": "pass"}')
    with pytest.raises(ValueError):
        parse_answer('{"label": "pass"}', labels=LABELS, scale=(1, 5))
