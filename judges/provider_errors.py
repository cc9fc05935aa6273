"""Classifying litellm's exceptions into judge call errors, with secrets scrubbed.

litellm's exceptions subclass openai's. The order below matters:
ContextWindowExceededError and ContentPolicyViolationError are
BadRequestErrors, so they are checked first. ``litellm.Timeout`` is an
``openai.APIConnectionError`` but not a ``litellm.APIConnectionError``, so
connection failures are recognised by openai's class, anywhere in the
exception's chain: litellm 1.102 raises a refused connection as an
InternalServerError with status 500, from an ``openai.APIConnectionError``.

    account (AccountJudgeCallError, fatal, and opens the judge's circuit)
        AuthenticationError (401), PermissionDeniedError (403),
        RateLimitError whose body says the quota is used up (cause QuotaExceeded)
    fatal (FatalJudgeCallError, the row fails at once)
        ContextWindowExceededError, ContentPolicyViolationError,
        NotFoundError (404), BadRequestError (400), UnprocessableEntityError (422),
        any other 4xx but 408, 409 and 429
    retryable (JudgeCallError)
        RateLimitError (429, with Retry-After), Timeout, APIConnectionError,
        InternalServerError, ServiceUnavailableError, BadGatewayError, any 5xx,
        and anything unexpected

The retry wait reads ``Retry-After`` (or ``retry-after-ms``) from
``exc.litellm_response_headers``, where litellm keeps the provider's headers
(``exc.response.headers`` is empty for mapped errors), then from
``exc.response.headers``. Every message goes through :func:`redact`.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import AccountJudgeCallError, FatalJudgeCallError, JudgeCallError

_MAX_MESSAGE = 400
_RETRYABLE_4XX = {408, 409, 429}
#: A 429 that is about money, not rate (OpenAI's ``insufficient_quota``): retrying cannot help.
_QUOTA = re.compile(r"insufficient_quota|exceeded your current quota|quota exceeded|billing", re.I)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every (non-trivial) secret replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def classify(exc: BaseException, *, judge: str, api_key_env: str | None, secrets: Iterable[str]) -> JudgeCallError:
    """The judge call error for an exception raised by ``litellm.completion``."""
    import litellm.exceptions as llm  # already imported by the call that raised
    import openai  # litellm's exceptions subclass openai's

    cause = type(exc).__name__
    transport = _transport_failure(exc, openai.APIConnectionError)
    if transport is not None:
        # No HTTP answer came, whatever status litellm reports (408 for a Timeout,
        # 500 for a refused connection, which it maps to InternalServerError).
        status = None
        cause = "Timeout" if isinstance(transport, openai.APITimeoutError) else "APIConnectionError"
    else:
        status = _status(exc)
    text = str(exc) or type(exc).__name__
    root = _root(exc)
    if transport is not None and root is not exc and str(root) and str(root) not in text:
        text = f"{text} ({str(root)})"
    text = redact(text, secrets)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "…"
    where = f"HTTP {status}: " if status is not None else ""

    def fatal(next_step: str) -> FatalJudgeCallError:
        return FatalJudgeCallError(f"{where}{text}; {next_step}", cause=cause, status_code=status)

    def account(next_step: str, named: str | None = None) -> AccountJudgeCallError:
        return AccountJudgeCallError(f"{where}{text}; {next_step}", cause=named or cause, status_code=status)

    def retryable() -> JudgeCallError:
        return JudgeCallError(
            f"{where}{text}", cause=cause, status_code=status, retry_after_s=retry_after(exc)
        )

    if transport is not None:
        return retryable()
    if isinstance(exc, llm.ContextWindowExceededError):
        return fatal(
            "the prompt is longer than the model's context window; "
            f"shorten the record or give judge {judge!r} a model with a larger window"
        )
    if isinstance(exc, llm.ContentPolicyViolationError):
        return fatal("the provider refused the content; this record cannot be judged by this model")
    if isinstance(exc, llm.AuthenticationError):
        key = api_key_env or "the provider's API key variable"
        return account(f"check the key in {key}, or api_key_env of judge {judge!r} in judgeq.toml")
    if isinstance(exc, llm.PermissionDeniedError):
        return account(f"the key is not allowed to use this model; check the account or the model of judge {judge!r}")
    if isinstance(exc, llm.NotFoundError):
        return fatal(f"check model and api_base of judge {judge!r} in judgeq.toml")
    if isinstance(exc, (llm.BadRequestError, llm.UnprocessableEntityError)):
        return fatal(f"the provider rejected the request; check model, params and the prompt of judge {judge!r}")
    if isinstance(exc, llm.RateLimitError) and _QUOTA.search(text):
        return account(f"the account's quota or credit is used up; top it up or change the key of judge {judge!r}",
                       named="QuotaExceeded")
    if isinstance(exc, (llm.RateLimitError, llm.InternalServerError, llm.ServiceUnavailableError, llm.BadGatewayError)):
        return retryable()
    if status is not None and 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return fatal(f"the provider rejected the request; check the config of judge {judge!r}")
    return retryable()


def retry_after(exc: BaseException) -> float | None:
    """The seconds the provider asked us to wait, if it said."""
    for headers in (getattr(exc, "litellm_response_headers", None), _response_headers(exc)):
        seconds = retry_after_from_headers(headers)
        if seconds is not None:
            return seconds
    return None


def retry_after_from_headers(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from ``retry-after-ms``, or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {str(key).lower(): str(value) for key, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            value = lowered["retry-after"].strip()
            try:
                return max(0.0, float(value))
            except ValueError:
                moment = email.utils.parsedate_to_datetime(value)
                return max(0.0, moment.timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 12:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _transport_failure(exc: BaseException, connection_error: type[BaseException]) -> BaseException | None:
    """The openai connection error (Timeout included) behind ``exc``, if no HTTP answer came."""
    return next((e for e in _chain(exc) if isinstance(e, connection_error)), None)


def _root(exc: BaseException) -> BaseException:
    return _chain(exc)[-1]


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _response_headers(exc: BaseException) -> Mapping[str, Any] | None:
    try:
        return getattr(getattr(exc, "response", None), "headers", None)
    except Exception:  # openai raises when an error has no response
        return None
