"""The remote LLM judge, over real HTTP through litellm, against the fake provider.

No mock of litellm: every call goes through ``litellm.completion`` to
:class:`tests.provider.FakeProvider` on 127.0.0.1. Retry waits are shortened
through the judge's RetryPolicy, never by patching sleeps.
"""

from __future__ import annotations

import dataclasses

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from judges.config import JudgeConfig
from judges.egress import EgressPolicy
from judges.errors import FatalJudgeCallError, JudgeCallError
from judges.llm import LlmJudge
from judges.prompt import render
from judges.provider_errors import retry_after_from_headers
from judges.record import Record
from judges.build import build
from judges.retry import RetryPolicy
from judges.spec import LlmJudgeSpec
from judges.types import parse_spec
from judges.verdict import Verdict
from tests.provider import FakeProvider

pytestmark = pytest.mark.timeout(30)

KEY = "sk-judgeq-test-7f3a9c2e5b1d"
#: Three unusable answers; failed calls retried for half a second.
FAST = RetryPolicy(attempts=3, multiplier=0.01, max_wait_s=0.02, retry_after_cap_s=0.05, max_total_s=0.5)
PROMPT = "Question: {input}\nAnswer: {output}\nIs the answer good?"


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    """litellm imported before any test times a call: its import (3-10 s) is not what these tests time."""
    from judges.llm import load_litellm

    load_litellm()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAKE_PROVIDER_KEY", KEY)
    return KEY


@pytest.fixture
def provider(key: str) -> Iterator[FakeProvider]:
    with FakeProvider(require_key=key) as fake:
        yield fake


def llm_judge(
    provider: FakeProvider, *, retry: RetryPolicy = FAST, check_env: bool = True, **table: Any
) -> LlmJudge:
    """An LLM judge on the fake provider, resolved from a table as judgeq.toml would give it."""
    spec = {
        "type": "llm",
        "model": "openai/fake-judge",
        "api_base": provider.base_url,
        "api_key_env": "FAKE_PROVIDER_KEY",
        "prompt": "relevance",
        "timeout_s": 5,
        **table,
    }
    config = JudgeConfig(judges={"j": parse_spec("j", spec)})
    resolved = config.resolve("j", check_env=check_env)
    assert isinstance(resolved.spec, LlmJudgeSpec)
    # As in embedded mode: the config is the test's own, so its route is trusted.
    judge = build(resolved, retry=retry, egress=EgressPolicy.defaults().trusting([resolved.spec]))
    assert isinstance(judge, LlmJudge)
    return judge


def judge_one(judge: LlmJudge, **fields: Any) -> Verdict:
    [verdict] = judge.judge([Record(**fields)])
    return verdict


# -- verdicts --------------------------------------------------------------------------


def test_labels_give_scores_and_the_call_is_recorded(provider: FakeProvider) -> None:
    judge = llm_judge(provider, temperature=0)
    good, bad = judge.judge([Record(id="g", input="q", output="a GOOD answer"), Record(id="b", input="q", output="meh")])
    assert (good.trace_id, good.score, good.label, good.attempts, good.error) == ("g", 1.0, "pass", 1, None)
    assert (bad.trace_id, bad.score, bad.label) == ("b", 0.0, "fail")
    assert "GOOD" in good.reason and good.latency_s > 0
    assert provider.count() == 2 and provider.count(200) == 2
    body = provider.calls[0].body or {}
    assert body["model"] == "fake-judge" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}  # litellm says openai/* takes it
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "JSON object" in body["messages"][0]["content"]
    assert provider.calls[0].authorization == f"Bearer {KEY}"


def test_tokens_come_from_usage(provider: FakeProvider) -> None:
    judge = llm_judge(provider, prompt="inline", prompt_text="Answer: {output}")
    verdict = judge_one(judge, output="GOOD")
    body = provider.calls[0].body or {}
    prompt_chars = sum(len(m["content"]) for m in body["messages"])
    assert verdict.tokens_in == max(1, prompt_chars // 4)
    answer = json.dumps({"label": "pass", "score": 1.0, "reason": "fake provider: the text contains GOOD"})
    assert verdict.tokens_out == max(1, len(answer) // 4)


def test_scale_scores_are_normalised_and_the_raw_score_kept(key: str) -> None:
    with FakeProvider(require_key=key, verdict=lambda body: {"score": 4, "reason": "mostly right"}) as provider:
        verdict = judge_one(llm_judge(provider, scale=[1, 5]), output="x")
    assert verdict.score == pytest.approx(0.75) and verdict.label == "4" and verdict.reason == "mostly right"


def test_a_fenced_answer_with_prose_is_parsed(key: str) -> None:
    answer = 'Let me think.\n```json\n{"Label": "PASS", "reason": "ok {braces}"}\n```\nDone.'
    with FakeProvider(require_key=key, verdict=lambda body: answer) as provider:
        verdict = judge_one(llm_judge(provider), output="x")
    assert verdict.label == "pass" and verdict.reason == "ok {braces}"


def test_cost_from_config_prices(provider: FakeProvider) -> None:
    judge = llm_judge(provider, price_per_mtok_in=0.15, price_per_mtok_out=0.60)
    verdict = judge_one(judge, output="GOOD")
    expected = (verdict.tokens_in * 0.15 + verdict.tokens_out * 0.60) / 1_000_000
    assert verdict.cost_usd == pytest.approx(expected) and verdict.cost_usd > 0


def test_cost_from_litellm_for_a_priced_model_and_config_prices_win(provider: FakeProvider) -> None:
    import litellm

    priced = judge_one(llm_judge(provider, model="openai/gpt-4o-mini"), output="GOOD")
    info = litellm.get_model_info("gpt-4o-mini")
    price_in, price_out = float(info["input_cost_per_token"] or 0), float(info["output_cost_per_token"] or 0)
    expected = priced.tokens_in * price_in + priced.tokens_out * price_out
    assert priced.cost_usd == pytest.approx(expected) and priced.cost_usd > 0
    overridden = judge_one(
        llm_judge(provider, model="openai/gpt-4o-mini", price_per_mtok_in=1000.0, price_per_mtok_out=0.0), output="GOOD"
    )
    assert overridden.cost_usd == pytest.approx(overridden.tokens_in * 1000.0 / 1_000_000)


def test_cost_is_zero_for_an_unpriced_model_without_config_prices(provider: FakeProvider) -> None:
    assert judge_one(llm_judge(provider), output="GOOD").cost_usd == 0.0


def test_records_are_judged_concurrently_and_in_order(key: str) -> None:
    with FakeProvider(require_key=key, latency_s=0.3) as provider:
        judge = llm_judge(provider)
        judge_one(judge, output="warm up")  # first call builds litellm's HTTP client
        records = [Record(id=str(i), output="GOOD" if i % 2 else "bad") for i in range(12)]
        started = time.perf_counter()
        verdicts = judge.judge(records)
        elapsed = time.perf_counter() - started
    assert [v.trace_id for v in verdicts] == [r.id for r in records]
    assert [v.label for v in verdicts] == ["fail", "pass"] * 6
    assert elapsed < 12 * 0.3 / 2  # serially it would take 3.6 s


# -- failures and retries -------------------------------------------------------------


def test_a_garbage_answer_is_retried_then_failed_with_its_cost(key: str) -> None:
    with FakeProvider(require_key=key, p_garbage=1.0) as provider:
        judge = llm_judge(provider, price_per_mtok_in=1.0, price_per_mtok_out=1.0)
        verdict = judge_one(judge, output="GOOD")
        assert provider.count(200) == 3
    assert not verdict.ok and verdict.score is None and verdict.attempts == 3 and verdict.error_kind == "answer"
    assert verdict.error is not None and verdict.error.startswith("JudgeAnswerError: the model's answer has no JSON")
    assert verdict.tokens_in > 0 and verdict.cost_usd > 0  # three answers were paid for


def test_500s_are_retried_until_success(key: str) -> None:
    with FakeProvider(require_key=key, script=["500", "500"]) as provider:
        verdict = judge_one(llm_judge(provider), output="GOOD")
        assert [c.status for c in provider.calls] == [500, 500, 200]
    assert verdict.ok and verdict.label == "pass" and verdict.attempts == 3


def test_persistent_500s_are_retried_for_the_time_budget_not_a_number_of_attempts(key: str) -> None:
    with FakeProvider(require_key=key, p_500=1.0) as provider:
        started = time.perf_counter()
        verdict = judge_one(llm_judge(provider), output="GOOD")  # FAST: 3 answers, 0.5 s of failed calls
        elapsed = time.perf_counter() - started
        calls = provider.count(500)
    assert calls > 3 and verdict.attempts == calls and verdict.error_kind == "transient"
    assert verdict.error is not None and verdict.error.startswith("InternalServerError: HTTP 500")
    assert f"no answer in {calls} attempts" in verdict.error
    assert 0.5 <= elapsed < 2.0  # the last attempt is made when the budget ends


def test_unusable_answers_and_failed_calls_have_separate_bounds(key: str) -> None:
    script = ["garbage", "500", "garbage", "429", "timeout", "500", "garbage"]
    with FakeProvider(require_key=key, script=script, timeout_sleep_s=5) as provider:
        verdict = judge_one(llm_judge(provider, timeout_s=0.2, retry=RetryPolicy(
            attempts=3, multiplier=0.01, retry_after_cap_s=0.05, max_total_s=30)), output="GOOD")
        assert provider.count(200) == 3  # the unusable answers (the timed-out call is recorded late)
    # Four failed calls did not use up the three answers; the third unusable one ended it.
    assert verdict.attempts == 7 and verdict.error_kind == "answer" and verdict.answer_errors == 3


def test_a_bad_key_fails_at_once_and_is_never_shown(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "sk-wrong-key-5e6f7a8b9c0d"
    monkeypatch.setenv("FAKE_PROVIDER_KEY", wrong)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="LiteLLM")
    with FakeProvider(require_key=KEY) as provider:  # it echoes the key it was given in its 401
        judge = llm_judge(provider)
        verdict = judge_one(judge, output="GOOD")
        assert provider.count() == 1 and provider.count(401) == 1
        with pytest.raises(FatalJudgeCallError) as info:
            judge.call_once(Record(output="GOOD"))
    assert verdict.attempts == 1 and verdict.error is not None
    assert verdict.error.startswith("AuthenticationError: HTTP 401") and "FAKE_PROVIDER_KEY" in verdict.error
    for text in (verdict.error, verdict.reason, str(info.value), repr(info.value), caplog.text):
        assert wrong not in text
    assert info.value.__suppress_context__  # the original exception (holding the key) is not chained


def test_the_key_never_appears_in_errors_of_retried_failures(key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="LiteLLM")
    with FakeProvider(require_key=key, script=["500", "429", "garbage", "timeout"], p_timeout=1.0,
                      timeout_sleep_s=5) as provider:
        policy = RetryPolicy(attempts=4, multiplier=0.01, retry_after_cap_s=0.05, max_total_s=1.0)
        verdict = judge_one(llm_judge(provider, timeout_s=0.3, retry=policy), output="GOOD")
    assert verdict.attempts >= 4 and verdict.error is not None and verdict.error.startswith("Timeout:")
    assert key not in caplog.text and key not in verdict.error
    assert "retrying" in caplog.text  # the retry log line exists, and is clean


def test_call_once_raises_classified_errors(key: str) -> None:
    with FakeProvider(require_key=key, script=["500", "429"]) as provider:
        judge = llm_judge(provider)
        with pytest.raises(JudgeCallError) as server_error:
            judge.call_once(Record(output="GOOD"))
        with pytest.raises(JudgeCallError) as rate_limited:
            judge.call_once(Record(output="GOOD"))
        assert judge.call_once(Record(output="GOOD")).label == "pass"
    assert not isinstance(server_error.value, FatalJudgeCallError)
    assert (server_error.value.cause, server_error.value.status_code) == ("InternalServerError", 500)
    assert (rate_limited.value.cause, rate_limited.value.status_code) == ("RateLimitError", 429)
    assert rate_limited.value.retry_after_s == 1.0


def test_retry_after_is_honoured(key: str) -> None:
    with FakeProvider(require_key=key, script=["429"]) as provider:
        policy = RetryPolicy(attempts=3, multiplier=0.01, retry_after_cap_s=0.6)
        verdict = judge_one(llm_judge(provider, retry=policy), output="GOOD")
        first, second = provider.calls
    assert (first.status, second.status) == (429, 200) and verdict.attempts == 2
    assert second.ts - first.ts >= 0.55  # Retry-After: 1, capped at 0.6 s by the policy


def test_429s_are_retried_while_the_provider_answers_however_many_it_takes(key: str) -> None:
    # A provider that rate limits 70 % of calls with sub-second Retry-Afters, yet answers the rest.
    with FakeProvider(require_key=key, p_429=0.7, retry_after_s=0.02, retry_after_ms=True, seed=3) as provider:
        policy = RetryPolicy(attempts=2, multiplier=0.01, max_total_s=60)
        judge = llm_judge(provider, retry=policy)
        verdicts = judge.judge([Record(id=f"r{i}", output="GOOD") for i in range(20)])
        rate_limited, answered = provider.count(429), provider.count(200)
    assert all(v.ok and v.label == "pass" for v in verdicts), [v.error for v in verdicts if not v.ok]
    assert answered == 20 and sum(v.attempts for v in verdicts) == 20 + rate_limited
    # Many records needed more attempts than the count of unusable answers allows: 429s are not counted.
    assert max(v.attempts for v in verdicts) > policy.attempts and rate_limited > 20


def test_the_client_timeout_is_honoured(key: str) -> None:
    with FakeProvider(require_key=key, p_timeout=1.0, timeout_sleep_s=10) as provider:
        judge = llm_judge(provider, timeout_s=0.3, retry=RetryPolicy(attempts=1, max_total_s=0.1))
        started = time.perf_counter()
        verdict = judge_one(judge, output="GOOD")
        elapsed = time.perf_counter() - started
    assert verdict.error is not None and verdict.error.startswith("Timeout: ") and verdict.attempts == 1
    assert 0.3 <= elapsed < 2.0


def test_a_timeout_is_retried(key: str) -> None:
    with FakeProvider(require_key=key, script=["timeout"], timeout_sleep_s=10) as provider:
        verdict = judge_one(llm_judge(provider, timeout_s=0.3), output="GOOD")
    assert verdict.ok and verdict.attempts == 2


def test_connection_refused_is_retried_for_the_time_budget_then_failed(key: str) -> None:
    closed = FakeProvider()
    closed.stop()  # bound, then closed: nothing listens on its port
    # Two seconds of budget: on a loaded machine a refused call costs litellm 0.1-0.2 s, so half a second
    # may hold only three of them.
    judge = llm_judge(closed, retry=dataclasses.replace(FAST, max_total_s=2.0))
    verdict = judge_one(judge, output="GOOD")
    assert verdict.attempts > 3 and verdict.error_kind == "transient"  # more than FAST's 3 answers
    assert verdict.error is not None and verdict.error.startswith("APIConnectionError: ")


def test_a_wrong_model_route_fails_at_once(key: str) -> None:
    with FakeProvider(require_key=key) as provider:
        spec_base = provider.base_url.removesuffix("/v1") + "/nowhere"
        verdict = judge_one(llm_judge(provider, api_base=spec_base), output="GOOD")
        assert provider.count(404) == 1
    assert verdict.attempts == 1 and verdict.error is not None and verdict.error.startswith("NotFoundError: HTTP 404")


def test_an_unset_key_variable_fails_rows_without_calling(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = llm_judge(provider)  # resolved while the key was set
    monkeypatch.delenv("FAKE_PROVIDER_KEY")
    verdict = judge_one(judge, output="GOOD")
    assert verdict.attempts == 1 and provider.count() == 0
    assert verdict.error == (
        "FatalJudgeCallError: judge 'j' needs FAKE_PROVIDER_KEY; set it in the worker's environment "
        "or change api_key_env in judgeq.toml"
    )


# -- records the prompt needs ------------------------------------------------------------


def test_faithfulness_needs_context_and_correctness_needs_expected(provider: FakeProvider) -> None:
    faithfulness = llm_judge(provider, prompt="faithfulness")
    correctness = llm_judge(provider, prompt="correctness")
    no_context = judge_one(faithfulness, id="r", output="GOOD")
    no_expected = judge_one(correctness, id="r", output="GOOD")
    assert provider.count() == 0
    assert no_context.attempts == 1 and "has no 'context'" in (no_context.error or "")
    assert no_expected.attempts == 1 and "has no 'expected'" in (no_expected.error or "")
    assert judge_one(faithfulness, output="GOOD", context=["a", "b"]).label == "pass"
    assert judge_one(correctness, output="GOOD", expected="GOOD").label == "pass"


def test_rendering_is_a_safe_single_pass() -> None:
    record = Record(input="What is {output}?", output='{"a": {context}} and {expected} %s {0}', context="C")
    text = render('Q: {input}\nA: {output}\nC: {context}\nLiteral: {"json": {x}} {unknown}', record, judge="t")
    assert text == 'Q: What is {output}?\nA: {"a": {context}} and {expected} %s {0}\nC: C\nLiteral: {"json": {x}} {unknown}'


# -- the fake provider itself -------------------------------------------------------------


def test_fake_provider_rate_limit_is_a_sliding_window(key: str) -> None:
    with FakeProvider(require_key=key, rpm=2, window_s=60) as provider:
        # No time budget: a 429 is not retried (a budget of any length ends with one last attempt).
        judge = llm_judge(provider, retry=RetryPolicy(attempts=1, max_total_s=0.0))
        verdicts = [judge_one(judge, output="GOOD") for _ in range(3)]
        assert [c.status for c in provider.calls] == [200, 200, 429]
        assert provider.count(429) == 1
    assert verdicts[2].error is not None and verdicts[2].error.startswith("RateLimitError: HTTP 429")


def test_a_judge_keeps_a_providers_per_second_limit(key: str) -> None:
    # At most 5 in any second at the provider; the judge is told 4 (a margin for a loaded machine, where a call
    # admitted on time may leave late, beside the next) and is never refused.
    with FakeProvider(require_key=key, per_second=5) as provider:
        judge = llm_judge(provider, rps=4)
        verdicts = judge.judge([Record(id=f"r{i}", output="GOOD") for i in range(15)])
        assert provider.count(429) == 0 and provider.max_in_window(1.0) <= 5
        assert all(v.ok for v in verdicts)
    with FakeProvider(require_key=key, per_second=5) as provider:  # the same provider, the judge not told
        llm_judge(provider).judge([Record(id=f"r{i}", output="GOOD") for i in range(15)])
        assert provider.count(429) > 0


def test_retry_after_header_forms() -> None:
    assert retry_after_from_headers({"Retry-After": "2"}) == 2.0
    assert retry_after_from_headers({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers(None) is None


def test_a_retry_waits_time_is_recorded_apart_from_the_calls_latency(key: str) -> None:
    """The Retry-After sleep between two 30 ms calls is ``wait_s``, not ``latency_s``."""
    with FakeProvider(require_key=key, script=["429"], latency_s=0.03) as provider:
        policy = RetryPolicy(attempts=3, multiplier=0.01, retry_after_cap_s=0.6)
        verdict = judge_one(llm_judge(provider, retry=policy), output="GOOD")
    assert verdict.ok and verdict.attempts == 2
    assert 0.03 <= verdict.latency_s < 0.45  # the calls' own time (the 429 answers at once), not the 0.6 s wait
    assert 0.55 <= verdict.wait_s < 1.5
