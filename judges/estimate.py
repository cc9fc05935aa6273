"""What a judgment should cost before any has been priced: the judge's configured prices times its prompt.

The budget controller prices a window's sample from the judge version's
recent priced calls (online/budget/traffic.py). A version with none yet (a
new judge, a changed prompt) would otherwise be planned at a flat default,
five times too cheap or too dear. When the config states the judge's prices
(``price_per_mtok_in/out``, which also price its calls: judges/llm.py), the
first estimate is those prices times the tokens of the requests it would
send: the system message and the template rendered with a few of the
window's records, counted by litellm's token counter for the judge's model,
plus :data:`judges.llm.ANSWER_TOKENS_ESTIMATE` tokens of answer (or the
``max_tokens`` the judge's params set, if fewer). A cascade is estimated at
its LLM stage's cost for every item: what it costs when nothing stops early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import JudgeError
from .llm import ANSWER_TOKENS_ESTIMATE, load_litellm, request_messages
from .record import Record
from .resolved import ResolvedJudge, llm_specs
from .spec import LlmJudgeSpec


@dataclass(frozen=True)
class PricedGuess:
    """USD a judgment is expected to cost from the configured prices, and the mean tokens it rests on."""

    usd: float
    tokens_in: float
    tokens_out: float

    def describe(self) -> str:
        return (f"from the judge's configured prices ({self.tokens_in:,.0f} tokens in, "
                f"{self.tokens_out:,.0f} out)")


def priced_guess(judge: ResolvedJudge, records: Sequence[Record]) -> PricedGuess | None:
    """The cost of one judgment by ``judge`` from its configured prices; None when a stage it calls has none.

    ``records``: a few of the items it will judge (none: the template alone stands for the prompt).
    """
    specs = llm_specs(judge)
    if not specs or any(s.price_per_mtok_in is None or s.price_per_mtok_out is None for s in specs):
        return None
    usd = tokens_in = tokens_out = 0.0
    for spec in specs:
        n_in = _prompt_tokens(judge.name, spec, records)
        n_out = float(_answer_tokens(spec))
        assert spec.price_per_mtok_in is not None and spec.price_per_mtok_out is not None
        usd += (n_in * spec.price_per_mtok_in + n_out * spec.price_per_mtok_out) / 1_000_000
        tokens_in, tokens_out = tokens_in + n_in, tokens_out + n_out
    return PricedGuess(usd, tokens_in, tokens_out) if usd > 0 else None  # free by its prices: priced calls will say


def _answer_tokens(spec: LlmJudgeSpec) -> int:
    cap = spec.params.get("max_tokens") or spec.params.get("max_completion_tokens")
    return min(ANSWER_TOKENS_ESTIMATE, cap) if isinstance(cap, int) and cap > 0 else ANSWER_TOKENS_ESTIMATE


def _prompt_tokens(name: str, spec: LlmJudgeSpec, records: Sequence[Record]) -> float:
    """The mean tokens of the requests for ``records`` (the bare template when there are none or none fit)."""
    requests = []
    for record in records:
        try:
            requests.append(request_messages(name, spec, record))
        except JudgeError:  # a record the template cannot take is not judged: it costs nothing
            continue
    if not requests:
        requests = [[{"role": "user", "content": spec.prompt_text or spec.prompt}]]
    litellm = load_litellm()  # lazily: seconds to import, and only a budget's first plans need it
    counted = [litellm.token_counter(model=spec.model, messages=messages) for messages in requests]
    return sum(counted) / len(counted)
