"""Why a judge's rows are errors, and what that means for a command's exit: error kinds sorted by cause.

A judge error is not a measurement. Some kinds say nothing about the items but
about the judge itself (the workers or the provider refused it), so a gate, a
pass or a failure on what is left would answer a question nobody asked; others
are about single items, and matter only when they are all there is. The
mapping (README, "Reliability", keeps the same table):

=============  =====================================================  ====  =====================
kind           cause                                                  exit  when
=============  =====================================================  ====  =====================
forbidden      configuration: the workers' key policy refused it      2     any row (judge-wide)
setup          configuration: a worker could not build the judge      2     any row (judge-wide)
account        configuration: the provider refused key or quota       2     any row (judge-wide)
circuit        configuration: the circuit account errors opened       2     any row (judge-wide)
transient      infrastructure: the provider did not answer            3     any row (judge-wide)
fatal          configuration: the request was refused (model, …)      2     nothing else scored
answer         configuration: no answer held a usable verdict         2     nothing else scored
too_large      configuration: a record larger than workers admit      2     nothing else scored
poison         infrastructure: the chunk's worker kept dying          3     nothing else scored
internal       a bug in judgeq (or a row the ledger would not take)   4     nothing else scored
(none)         a local judge's own "cannot judge this record"         —     a gate fails (1)
=============  =====================================================  ====  =====================

Configuration (2) comes first, then infrastructure (3), then a bug (4): a fix
of the configuration is needed before a retry can help. The kinds of
:data:`RETRYABLE` are those a fix outside the run cures (the workers' key
list, their version or keys, the account): ``judgeq resume RUN --retry-errors
KIND,...`` judges them again; transient errors are always retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from judgeq.errors import BAD_INPUT, INFRASTRUCTURE, INTERNAL, OK


#: kind -> (exit code, what it means, what to do next; RUN is the run id).
KINDS: Final[dict[str, tuple[int, str, str]]] = {
    "forbidden": (BAD_INPUT, "the workers' key policy refused the judge, nothing was sent",
                  "allow the key's endpoint on the workers (JUDGEQ_KEY_ENDPOINTS) and restart them, then "
                  "'judgeq resume RUN --retry-errors forbidden'"),
    "setup": (BAD_INPUT, "a worker could not build the judge",
              "run the workers on the submitter's judgeq version with the judge's key variable set, then "
              "'judgeq resume RUN --retry-errors setup'"),
    "account": (BAD_INPUT, "the provider refused the key, its permissions or its quota",
                "fix the key or the account on the workers, then 'judgeq resume RUN --retry-errors account,circuit'"),
    "circuit": (BAD_INPUT, "the judge's circuit was open after account errors",
                "fix the key or the account on the workers, then 'judgeq resume RUN --retry-errors account,circuit'"),
    "transient": (INFRASTRUCTURE, "the provider was unreachable: no answer (5xx, timeouts, refused "
                  "connections, rate limits) within the retry budget, JUDGEQ_RETRY_MAX_S",
                  "once it answers again, 'judgeq resume RUN' retries them"),
    "fatal": (BAD_INPUT, "the provider refused every request",
              "fix the judge's model, api_base, params or prompt in judgeq.toml, then submit again"),
    "answer": (BAD_INPUT, "no answer of the model held a usable verdict",
               "fix the judge's model, prompt, labels or scale in judgeq.toml, then submit again"),
    "too_large": (BAD_INPUT, "the records are larger than the workers' JUDGEQ_MAX_RECORD_BYTES admits, "
                  "so they were never sent",
                  "give submitters, beat and workers the same JUDGEQ_MAX_RECORD_BYTES, or shorten the records, "
                  "then submit again"),
    "poison": (INFRASTRUCTURE, "the workers judging them kept dying (crash, memory, time limit)",
               "check the workers' logs and limits, then submit again"),
    "internal": (INTERNAL, "judgeq itself failed on them (a bug)", "please report it with the error"),
}

#: Kinds that stand for the judge, not its items: any row of them decides the exit.
JUDGE_WIDE: Final = frozenset({"forbidden", "setup", "account", "circuit", "transient"})

#: Kinds ``judgeq resume --retry-errors`` may judge again. Nothing was sent for forbidden, setup and
#: circuit rows, and an account refusal is not a paid answer; what a row paid travels into its retry.
#: Not fatal or answer (their fix changes the judge's version: a new run), nor poison (it would kill
#: the workers again) or internal (it may stand for a paid verdict the ledger would not store).
RETRYABLE: Final = ("forbidden", "setup", "account", "circuit")


@dataclass(frozen=True)
class Cause:
    """A judge's main reason for its error rows: its kind, how many, and one's text."""

    judge: str
    kind: str
    count: int
    rows: int
    sample: str

    @property
    def code(self) -> int:
        return KINDS[self.kind][0]

    def line(self, run_id: str) -> str:
        """One sentence: the judge, the kind and its meaning, a sample error, and the next step."""
        _, meaning, step = KINDS[self.kind]
        return (f"judge {self.judge}: {self.count} of {self.rows} rows are {self.kind} errors ({meaning}), "
                f"e.g. {self.sample!r}; {step.replace('RUN', run_id)}")


def main_kind(summary: Any) -> Any:
    """The commonest error kind of a judge's summary (``ledger.rows.ErrorKindCount``), or None."""
    kinds = getattr(summary, "error_kinds", ())
    return kinds[0] if kinds else None


def cause_of(summary: Any) -> Cause | None:
    """The judge's reason not to read its figures as a measurement, or None when they are one."""
    kinds = list(getattr(summary, "error_kinds", ()))
    wide = [k for k in kinds if k.kind in JUDGE_WIDE]
    if wide:  # the commonest of the configuration kinds first, then transient
        top = min(wide, key=lambda k: (KINDS[k.kind][0], -k.count))
    elif summary.ok == 0 and kinds and kinds[0].kind in KINDS:
        top = kinds[0]
    else:
        return None
    return Cause(summary.eval, top.kind, top.count, summary.n, top.sample)


def not_measured(run_id: str, summaries: Sequence[Any]) -> tuple[int, str]:
    """The exit code of the run's causes (0 when none) and one line naming each judge's, worst first."""
    causes = sorted((c for c in map(cause_of, summaries) if c is not None), key=lambda c: c.code)
    if not causes:
        return OK, ""
    return causes[0].code, "judgeq: " + "; also ".join(c.line(run_id) for c in causes)


def error_lines(summaries: Sequence[Any]) -> list[str]:
    """For a report: one line per judge and error kind, with its count and a sample error."""
    lines = []
    for s in summaries:
        for k in getattr(s, "error_kinds", ()):
            lines.append(f"{s.eval} errors: {k.kind or '(no kind)'} {k.count}: {k.sample}")
    return lines


def parse_retry(text: str | None) -> tuple[str, ...]:
    """``--retry-errors KIND,...`` as kinds; ValueError naming a kind it cannot retry."""
    if not text:
        return ()
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    bad = [k for k in kinds if k not in RETRYABLE and k != "transient"]
    if bad or not kinds:
        raise ValueError(f"--retry-errors {text!r}: {', '.join(bad) or 'no kind'} cannot be retried; give some of "
                         f"{', '.join(RETRYABLE)} (transient errors are always retried; fatal and answer "
                         "need a changed judge, so a new submit)")
    return kinds
