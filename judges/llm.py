"""The remote LLM judge: one litellm chat call per record, parsed into a verdict.

Three layers:

- :meth:`LlmJudge.call_once` makes one call for one record and returns its
  verdict or raises a classified JudgeCallError (FatalJudgeCallError when
  retrying cannot help), carrying what the failed call cost;
- :meth:`LlmJudge.judge_one` applies the retry policy (:mod:`judges.retry`)
  and the rate limit (:mod:`judges.limits`: a slot reserved before every
  attempt, tokens corrected after it, 429s reported) and never raises: it ends
  with a verdict, ``Verdict.failed`` with the attempts made and the cost and
  tokens of all of them, or ``Verdict.deferred`` when the next wait is long
  enough that the record should go back to the queue;
- :meth:`LlmJudge.judge` judges a batch concurrently in a small thread pool.

litellm is imported only when a record is judged (:func:`load_litellm`), after
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set, so importing this module and
building a judge are cheap. The API key is read from the environment at call time, passed to
litellm and otherwise never stored; every error text is scrubbed of it.

Before anything is sent, the judge's egress policy (:mod:`judges.egress`) must
allow its key variable, endpoint and parameters; a refused judge ends every
record as an error (``error_kind = "forbidden"``) without a single request. An
explicit key is always passed (a placeholder when the judge names none), so
litellm never falls back to a key it finds in the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

from .base import Kind
from .egress import PLACEHOLDER_KEY, EgressPolicy
from .errors import (AccountJudgeCallError, EgressRefused, FatalJudgeCallError, JudgeAnswerError, JudgeArgumentError,
                     JudgeCallError, JudgeConfigError, JudgeError)
from .limits import Limit, LimiterUnavailable, LimitWait, LocalLimiter, RateLimiter, Unlimited
from .parse import parse_answer
from .prompt import answer_instructions, render
from .provider_errors import classify, redact
from .record import Record
from .retry import Prior, RetryPolicy
from .spec import LlmJudgeSpec
from .verdict import Verdict

#: The default (and largest useful) number of records judged at once by one judge call.
DEFAULT_MAX_WORKERS = 16
_MAX_REASON = 1000


class LlmJudge:
    """A judge that asks an LLM, through litellm, to grade each record."""

    kind: Kind = "remote"

    def __init__(
        self,
        name: str,
        version: str,
        spec: LlmJudgeSpec,
        *,
        retry: RetryPolicy | None = None,
        max_workers: int | None = None,
        limiter: RateLimiter | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        if spec.prompt_text is None:
            raise JudgeConfigError(f"judge {name!r} has no prompt text; build it from JudgeConfig.resolve(...)")
        if max_workers is not None and max_workers < 1:
            raise JudgeArgumentError(f"max_workers = {max_workers}; it must be at least 1")
        self.name = name
        self.version = version
        self.spec = spec
        self.retry = retry or RetryPolicy()
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS
        self._template: str = spec.prompt_text
        self._system = answer_instructions(labels=spec.labels, scale=spec.scale)
        self._json_mode: bool | None = None
        self.limit = Limit.of(spec.model, spec.api_base, spec.rpm, spec.tpm, spec.rps, spec.burst)
        self.limiter: RateLimiter = limiter or (default_limiter() if self.limit.limited else Unlimited())
        #: Where this judge's key may go; the built-in provider pairs unless the caller says otherwise.
        self.egress = egress or EgressPolicy.defaults()
        self._egress_checked = False
        self._refusal: EgressRefused | None = None

    def __repr__(self) -> str:
        return f"LlmJudge({self.version!r}, model={self.spec.model!r})"

    # -- a batch -------------------------------------------------------------

    def judge(
        self,
        records: Sequence[Record],
        *,
        prior: Mapping[str, Prior] | None = None,
        deadline: float | None = None,
    ) -> list[Verdict]:
        """One verdict per record, in order; records are judged concurrently. Never raises.

        ``prior``: what earlier deliveries spent on some records (by id);
        ``deadline`` (``time.monotonic()``): no wait or call that would end
        after it starts; such records come back deferred (``Verdict.deferred``).
        """
        workers = min(len(records), self.max_workers)
        if records:
            try:
                load_litellm()  # import once, before threads race to import it
            except ImportError:
                pass  # each record's verdict will say so
        known = prior or {}
        if workers <= 1:
            return [self.judge_one(record, known.get(record.id), deadline) for record in records]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"judge-{self.name}") as pool:
            return list(pool.map(lambda r: self.judge_one(r, known.get(r.id), deadline), records))

    # -- one record, with retries ------------------------------------------

    def judge_one(self, record: Record, prior: Prior | None = None, deadline: float | None = None) -> Verdict:
        """The verdict on one record under the retry policy and the rate limit. Never raises.

        ``attempts``, ``cost_usd`` and the tokens count every attempt (failed
        answers were paid for too), those of earlier deliveries included;
        ``latency_s`` is the calls' own time (each request until its answer or
        failure), and ``wait_s`` the time waited around them: rate limit slots,
        backoff sleeps and, for a handed-back record, its time in the queue.
        A wait longer than the policy's ``handback_s``, or past ``deadline``,
        ends in a deferred verdict instead (see :class:`judges.retry.Prior`).
        """
        try:
            load_litellm()  # the first import takes seconds: not part of any record's latency
            self._supports_json_mode()  # asked once, before a rate limit slot is reserved, not after
        except ImportError as exc:
            return Verdict.failed(record.id, f"ImportError: {exc}; install judgeq with its dependencies",
                                  error_kind="internal")
        try:
            self._check_egress()
        except EgressRefused as exc:  # nothing was sent, nothing will be
            return Verdict.failed(record.id, exc.describe(), error_kind="forbidden", attempts=0)
        prior = prior or Prior()
        policy = self.retry
        attempts, cost, tokens_in, tokens_out = prior.attempts, prior.cost_usd, prior.tokens_in, prior.tokens_out
        first_at, last_error, answer_errors = prior.started_at, prior.last_error, prior.answer_errors
        called, waited = prior.latency_s, prior.waited_s(time.time())

        def usage() -> dict[str, Any]:
            return {"attempts": attempts, "cost_usd": cost, "tokens_in": tokens_in, "tokens_out": tokens_out,
                    "latency_s": called, "wait_s": waited, "answer_errors": answer_errors}

        def pause(seconds: float) -> None:
            nonlocal waited
            began = time.perf_counter()
            time.sleep(seconds)
            waited += time.perf_counter() - began

        def may_wait(seconds: float) -> bool:
            if policy.handback_s is not None and seconds > policy.handback_s:
                return False
            return deadline is None or time.monotonic() + seconds <= deadline

        def sleep(seconds: float) -> None:
            if not may_wait(seconds):
                raise _HandBack(seconds)
            pause(seconds)

        def attempt() -> Verdict:
            nonlocal attempts, cost, tokens_in, tokens_out, first_at, last_error, answer_errors, called
            messages = self._messages(record)
            self._api_key()  # an unset key fails before it costs a rate limit slot
            estimated = _estimate_tokens(messages)
            if deadline is not None and time.monotonic() + self.spec.timeout_s > deadline:
                raise _HandBack(0.0)  # the call could outlast this delivery
            try:
                wait = self.limiter.reserve(self.limit, estimated, max_wait_s=self._slot_wait(deadline))
            except LimitWait as exc:  # back a little early: the schedule must not run dry meanwhile
                raise _HandBack(exc.wait_s - min(LIMIT_LEAD_S, exc.wait_s / 4)) from None
            except LimiterUnavailable:
                raise _HandBack(LIMITER_DOWN_RETRY_S) from None
            if wait > 0:
                pause(wait)
            attempts += 1
            first_at = first_at or time.time()
            began = time.perf_counter()
            try:
                try:
                    verdict = self._call(record, messages)
                finally:  # the call's own time, failed or not; not the limiter's bookkeeping after it
                    called += time.perf_counter() - began
            except JudgeCallError as exc:  # what a failed attempt cost still counts
                cost += exc.cost_usd
                tokens_in += exc.tokens_in
                tokens_out += exc.tokens_out
                last_error = exc.describe()
                answer_errors += isinstance(exc, JudgeAnswerError)
                if exc.status_code == 429 and not isinstance(exc, FatalJudgeCallError):
                    self.limiter.throttled(self.limit, exc.retry_after_s)
                if exc.tokens_in or exc.tokens_out:
                    self.limiter.settle(self.limit, estimated, exc.tokens_in + exc.tokens_out)
                raise
            self.limiter.settle(self.limit, estimated, verdict.tokens_in + verdict.tokens_out)
            return verdict

        try:
            if prior.not_before > time.time():
                sleep(prior.not_before - time.time())
            # A record handed back for a wait makes that attempt even when its budget ran out meanwhile.
            verdict = policy.retrying(sleep=sleep, prior=prior)(attempt)
        except _HandBack as back:
            return Verdict.deferred(record.id, back.wait_s, error=last_error, started_at=first_at, **usage())
        except EgressRefused as exc:
            error, kind = exc.describe(), "forbidden"
        except AccountJudgeCallError as exc:
            error, kind = exc.describe(), "account"
        except FatalJudgeCallError as exc:
            error, kind = exc.describe(), "fatal"
        except JudgeAnswerError as exc:  # answers, paid for, that held no verdict: RetryPolicy.attempts of them
            error, kind = f"{exc.describe()}; {answer_errors} unusable answers", "answer"
        except JudgeCallError as exc:  # no answer (429, 5xx, timeout, connection) for the whole time budget
            tried_for = time.time() - first_at if first_at else 0.0
            error, kind = f"{exc.describe()}; no answer in {attempts} attempts over {tried_for:.0f}s", "transient"
        except Exception as exc:  # a bug rather than a provider failure: still a verdict
            error, kind = f"{type(exc).__name__}: {redact(str(exc), self._secrets())}", "internal"
        else:
            return dataclasses.replace(
                verdict,
                attempts=attempts,
                cost_usd=verdict.cost_usd + cost,
                tokens_in=verdict.tokens_in + tokens_in,
                tokens_out=verdict.tokens_out + tokens_out,
                latency_s=called,
                wait_s=waited,
            )
        result = usage()
        result["attempts"] = max(attempts, 1)
        return Verdict.failed(record.id, error, error_kind=kind, **result)

    def _slot_wait(self, deadline: float | None) -> float:
        """The longest wait for a rate limit slot this attempt accepts."""
        longest = self.retry.handback_s if self.retry.handback_s is not None else math.inf
        if deadline is not None:
            longest = min(longest, deadline - time.monotonic() - self.spec.timeout_s)
        return max(0.0, longest)

    # -- one call ----------------------------------------------------------

    def call_once(self, record: Record) -> Verdict:
        """One call for one record: its verdict, or a classified JudgeCallError.

        FatalJudgeCallError: the record lacks a field the prompt needs, the API
        key variable is unset, or the provider refused for good (auth, bad
        request). JudgeAnswerError: the answer holds no usable verdict.
        """
        return self._call(record, self._messages(record))

    def _messages(self, record: Record) -> list[dict[str, str]]:
        return request_messages(self.name, self.spec, record, system=self._system)

    def _call(self, record: Record, messages: list[dict[str, str]]) -> Verdict:
        spec = self.spec
        started = time.perf_counter()
        response = self._complete(messages)
        latency = time.perf_counter() - started
        tokens_in, tokens_out = _tokens(response)
        cost = self._cost(response, tokens_in, tokens_out)
        try:
            text = _content(response)
            answer = parse_answer(text, labels=spec.labels, scale=spec.scale)
        except JudgeAnswerError as exc:
            exc.cost_usd, exc.tokens_in, exc.tokens_out = cost, tokens_in, tokens_out
            raise
        return Verdict(
            trace_id=record.id,
            score=answer.score,
            label=answer.label,
            reason=answer.reason[:_MAX_REASON],
            cost_usd=cost,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_s=latency,
            attempts=1,
            provider_model=_said(response, "model"),
            system_fingerprint=_said(response, "system_fingerprint"),
        )

    def _complete(self, messages: list[dict[str, str]]) -> Any:
        """``litellm.completion`` with judgeq's fixed arguments; raises classified errors."""
        spec = self.spec
        api_key = self._api_key()
        litellm = load_litellm()
        kwargs: dict[str, Any] = {
            "model": spec.model,
            "messages": messages,
            "timeout": spec.timeout_s,
            "max_retries": 0,  # the OpenAI SDK's own retries: off, the retry policy decides
            "num_retries": 0,  # litellm's
        }
        if spec.api_base is not None:
            kwargs["api_base"] = spec.api_base
        # Always a key: given none, litellm would take OPENAI_API_KEY (and others) from the environment. Only a
        # keyless cloud model the operator listed goes without, to sign as the machine (judges/egress.py).
        if api_key is not None:
            kwargs["api_key"] = api_key
        if spec.temperature is not None:
            kwargs["temperature"] = spec.temperature
        kwargs.update(spec.params)
        if "response_format" not in spec.params and self._supports_json_mode():
            kwargs["response_format"] = {"type": "json_object"}
        try:
            return litellm.completion(**kwargs)
        except Exception as exc:
            # "from None": the original message may hold the key; it must not reach a traceback.
            raise classify(
                exc, judge=self.name, api_key_env=spec.api_key_env, secrets=self._secrets()
            ) from None

    def _check_egress(self) -> None:
        """Raise EgressRefused unless the policy allows this judge's calls (decided once per judge)."""
        if not self._egress_checked:
            try:
                self.egress.check(self.name, self.spec, self._provider())
            except EgressRefused as exc:
                self._refusal = exc
            self._egress_checked = True
        if self._refusal is not None:
            raise EgressRefused(self._refusal.message)

    @functools.cached_property
    def _provider_name(self) -> str | None:
        """litellm's provider for the model and api_base (None if litellm does not know it); asked once."""
        return provider_of(self.spec)

    def _provider(self) -> str | None:
        return self._provider_name

    def _api_key(self) -> str | None:
        """The key to send: checked against the egress policy, a placeholder when the judge names none, None for
        a keyless cloud model the operator listed (it authenticates as the machine)."""
        self._check_egress()
        env = self.spec.api_key_env
        if env is None:
            return None if self.egress.cloud_identity(self.spec, self._provider()) else PLACEHOLDER_KEY
        key = os.environ.get(env)
        if not key:
            raise FatalJudgeCallError(
                f"judge {self.name!r} needs {env}; set it in the worker's environment "
                "or change api_key_env in judgeq.toml"
            )
        return key

    def _secrets(self) -> list[str]:
        env = self.spec.api_key_env
        key = os.environ.get(env) if env else None
        return [key] if key else []

    def _supports_json_mode(self) -> bool:
        """Whether litellm says the model takes ``response_format`` (asked once per judge)."""
        if self._json_mode is None:
            litellm = load_litellm()
            try:
                # litellm 1.102 has no supports_response_format(); newer releases may.
                check = getattr(litellm, "supports_response_format", None)
                if callable(check):
                    self._json_mode = bool(check(model=self.spec.model))
                else:
                    supported = litellm.get_supported_openai_params(model=self.spec.model) or []
                    self._json_mode = "response_format" in supported
            except Exception:  # unknown provider or model: ask in the prompt only
                self._json_mode = False
        return self._json_mode

    def _cost(self, response: Any, tokens_in: int, tokens_out: int) -> float:
        """Config prices when set (they win), else litellm's ``response_cost``, else 0."""
        spec = self.spec
        if spec.price_per_mtok_in is not None and spec.price_per_mtok_out is not None:
            return (tokens_in * spec.price_per_mtok_in + tokens_out * spec.price_per_mtok_out) / 1_000_000
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        return float(cost) if isinstance(cost, (int, float)) else 0.0


class _HandBack(JudgeError):
    """Raised inside judge_one when the next wait is too long to sleep here (caught there: never escapes)."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(wait_s)
        self.wait_s = wait_s


#: A record deferred for a rate limit slot comes back this much (at most a quarter of its wait) early.
LIMIT_LEAD_S = 2.0

#: Seconds before a record whose limiter could not be reached is tried again.
LIMITER_DOWN_RETRY_S = 5.0

def request_messages(name: str, spec: LlmJudgeSpec, record: Record, *, system: str | None = None) -> list[dict[str, str]]:
    """The chat messages judge ``name`` sends for ``record``: how to answer, then the rendered template.

    ``system``: the answer instructions when the caller has them already. Raises FatalJudgeCallError when
    the template needs a field the record lacks.
    """
    if system is None:
        system = answer_instructions(labels=spec.labels, scale=spec.scale)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": render(spec.prompt_text or "", record, judge=name)},
    ]


#: Tokens allowed for the answer when estimating a call before it is made.
ANSWER_TOKENS_ESTIMATE = 100


def _estimate_tokens(messages: list[dict[str, str]]) -> int:
    """Tokens of a request before it is sent: characters / 4, plus an answer's worth."""
    return sum(len(m.get("content") or "") for m in messages) // 4 + ANSWER_TOKENS_ESTIMATE


@functools.cache
def default_limiter() -> LocalLimiter:
    """The in-process limiter shared by judges built without one (one per process)."""
    return LocalLimiter()


def provider_of(spec: LlmJudgeSpec) -> str | None:
    """litellm's provider for ``spec``'s model and api_base (None if litellm does not know it)."""
    try:
        return str(load_litellm().get_llm_provider(model=spec.model, api_base=spec.api_base)[1])
    except Exception:
        return None


def refuse_keyless(judges: Iterable[tuple[str, LlmJudgeSpec]], policy: EgressPolicy) -> None:
    """EgressRefused for the first (name, spec) a worker under ``policy`` would refuse as keyless cloud judging
    (:meth:`EgressPolicy.check_keyless`). Only judges with neither api_key_env nor api_base ask litellm for
    their provider (importing it), so submitting keyed judges does not pay for that import."""
    for name, spec in judges:
        if spec.api_key_env is None and spec.api_base is None:
            policy.check_keyless(name, spec, provider_of(spec))


def warm_up() -> float:
    """Import litellm and run its call path once without a request; the seconds it took. Never raises.

    A process that will judge remotely calls this before it has work (a
    worker before it reports ready, an embedded submit while it reads the
    dataset), so that the first record's call does not pay the import
    (seconds) nor litellm's lazily loaded call path: the priming call is a
    ``mock_response`` completion, which builds the request as a real one
    would and sends nothing.
    """
    started = time.perf_counter()
    main = threading.main_thread()
    try:
        litellm = load_litellm()
        if not main.is_alive():  # the process is ending (bad input, on a warm-up thread): nothing to prime
            return time.perf_counter() - started
        litellm.completion(model="openai/judgeq-warm-up", api_base="http://127.0.0.1:9/v1", api_key=PLACEHOLDER_KEY,
                           messages=[{"role": "user", "content": "warm up"}], mock_response="{}",
                           max_retries=0, num_retries=0, timeout=1)
    except Exception as exc:  # ImportError included: the first record's verdict will say what is wrong
        if main.is_alive():  # else litellm failed because the interpreter is shutting down: not worth a line
            logging.getLogger(__name__).warning("could not warm up litellm: %s: %s", type(exc).__name__, exc)
    if main.is_alive():
        settle_heap()
    return time.perf_counter() - started


def settle_heap() -> None:
    """Move what is alive now out of the cyclic garbage collector's reach (``gc.freeze``).

    After litellm's import a process holds some 330,000 objects, and every
    full collection walks them all: 0.4 s here, during which no thread of the
    process runs. Calls admitted by the rate limiter then leave together once
    it ends, and a provider enforcing its limit per second answers that
    bunch with 429s. Frozen, the import's objects are never walked again;
    collections see only what judging allocates. One full collection first,
    so the import's own garbage is freed rather than kept for ever.
    """
    gc.collect()
    gc.freeze()


#: One import of litellm at a time: a warm-up thread and the first judging threads may ask at once.
_IMPORT_LOCK = threading.Lock()
#: litellm once imported whole and set up (``sys.modules`` holds it from the start of its import).
_IMPORTED: list[ModuleType] = []


def load_litellm() -> ModuleType:
    """litellm, imported on first use with the local price map (no download at import)."""
    if not _IMPORTED:
        with _IMPORT_LOCK:
            if not _IMPORTED:
                _IMPORTED.append(_import_litellm())
    return _IMPORTED[0]


def _import_litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    import openai.resources  # noqa: F401 - else imported by the first call (0.3-0.5 s), after its rate slot

    litellm.suppress_debug_info = True  # no "Give Feedback" banner printed on every error
    # litellm logs every call at INFO (several lines each); a worker's log is for our events.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


#: The most characters kept of what a provider says of itself (a model name, a fingerprint): its text, not ours.
_MAX_IDENTITY = 200


def _said(response: Any, name: str) -> str | None:
    """What the provider's response says in ``name`` (the model that answered, the system fingerprint), if a
    non-empty string: litellm copies both from the provider's JSON (ModelResponse.model, .system_fingerprint)."""
    value = getattr(response, name, None)
    return value[:_MAX_IDENTITY] if isinstance(value, str) and value.strip() else None


def _tokens(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def _content(response: Any) -> str:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        content = None
    if not isinstance(content, str) or not content.strip():
        raise JudgeAnswerError("the model returned no text (empty answer, refusal or tool call)")
    return content
