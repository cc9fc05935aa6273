"""What the Ledger API takes and gives besides its tables: input rows and computed results.

Tables come back from :class:`ledger.store.Ledger` as their SQLModel class
(``Run``, ``Score``), detached from any session: reading them is free, changing
them writes nothing. Rows going in, and figures computed from many rows, are
the dataclasses below (frozen, except the hot ``ScoreIn``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ledger.errors import LedgerArgumentError
from ledger.models import SCORE_STATUSES, ScoreStatus


@dataclass(frozen=True)
class ItemIn:
    """One record of a run, as ``add_items`` stores it."""

    trace_id: str
    seq: int
    content_hash: str
    record: dict[str, Any]
    weight: float | None = None  # an online sample's 1/p and stratum, kept so a resend carries them
    stratum: str | None = None


@dataclass(slots=True)
class ScoreIn:
    """One ledger row to write; the fields of ``Score``. ``ts`` None means the time of the write.

    Not frozen, unlike the others: workers build one per verdict, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) costs four
    times as much (~2 µs against ~0.5 µs for these 23 fields). Treat it as
    immutable all the same; ``dataclasses.replace`` makes a changed copy.
    """

    run_id: str
    trace_id: str
    eval: str
    judge_version: str
    dataset: str
    status: ScoreStatus = "ok"
    score: float | None = None
    label: str | None = None
    reason: str = ""
    cost_usd: float = 0.0
    latency_s: float = 0.0
    wait_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 0
    error: str | None = None
    cached: bool = False
    weight: float = 1.0
    stratum: str | None = None
    cluster: str | None = None
    content_hash: str | None = None
    saved_usd: float = 0.0
    error_kind: str | None = None
    confidence: float | None = None
    stage: str | None = None
    audit_label: str | None = None
    audit_score: float | None = None
    provider_model: str | None = None
    system_fingerprint: str | None = None
    ts: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in SCORE_STATUSES:
            raise LedgerArgumentError(f"score status must be one of {SCORE_STATUSES}, not {self.status!r}")


#: ``error_kind`` of the error row that stands for a row the database would not store.
UNSTORABLE_KIND = "internal"


def unstorable(row: ScoreIn, problem: str, *, keep_usage: bool) -> ScoreIn:
    """The error row written instead of ``row``, which the database refused with ``problem``.

    It keeps the row's key, judge version and sampling fields, and with
    ``keep_usage`` what the judgement cost (cost, tokens, latency, attempts),
    so the run's spend stays right; without it (when the usage is what the
    database refused) those are zero and the error says so.
    """
    what = "verdict" if row.status == "ok" else f"{row.status} row"
    error = f"the ledger could not store this {what}: {problem}"
    if row.error:
        error += f"; its error was: {row.error}"
    failed = replace(row, status="error", score=None, label=None, reason="", error=error,
                     error_kind=UNSTORABLE_KIND, cached=False)
    if keep_usage:
        return failed
    return replace(failed, cost_usd=0.0, saved_usd=0.0, tokens_in=0, tokens_out=0, latency_s=0.0, wait_s=0.0,
                   attempts=0,
                   weight=row.weight if math.isfinite(row.weight) else 1.0,
                   error=error + " (its cost and tokens could not be stored either)")


@dataclass(frozen=True)
class Progress:
    """How far a run is: score rows written against the rows that complete it."""

    expected: int
    done: int
    ok: int
    errors: int
    skipped: int

    @property
    def complete(self) -> bool:
        """Whether every expected row is written (errors and skips count as written)."""
        return self.done >= self.expected


@dataclass(frozen=True)
class ErrorKindCount:
    """One judge's error rows of one ``error_kind`` (None: a local judge's own "cannot judge"), and one's text."""

    kind: str | None
    count: int
    sample: str  # the error text of one of them (the least, in text order: the same on every read)


@dataclass(frozen=True)
class EvalSummary:
    """Figures for one eval of a run.

    ``mean`` is the weighted mean ``sum(w*s)/sum(w)`` over ok rows that have a
    score (None if there are none); latency percentiles are over the rows that
    were judged (not skipped), None if there are none.
    """

    eval: str
    n: int
    ok: int
    errors: int
    skipped: int
    cached: int
    mean: float | None
    cost_usd: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    tokens_in: int
    tokens_out: int
    judge_versions: tuple[str, ...] = field(default=())
    saved_usd: float = 0.0  # what the cache hits cost when first paid for
    account_errors: int = 0  # errors from the provider refusing the account, or the circuit they opened
    transient_errors: int = 0  # no answer from the provider within the retry budget: `judgeq resume` retries them
    error_kinds: tuple[ErrorKindCount, ...] = ()  # the error rows by kind, the commonest first
    providers: tuple[ProviderIdentity, ...] = ()  # what answered behind the judge's model alias, first seen first

    @property
    def provider_changed(self) -> bool:
        """Whether the rows name more than one model or system fingerprint the provider said answered."""
        return len(self.providers) > 1


@dataclass(frozen=True)
class ProviderIdentity:
    """One model (and system fingerprint) a provider said answered an eval's calls, on how many rows, when."""

    model: str | None
    fingerprint: str | None
    rows: int
    first_ts: datetime
    last_ts: datetime

    def text(self) -> str:
        fingerprint = "" if self.fingerprint is None else f" ({self.fingerprint})"
        return f"{self.model or 'an unnamed model'}{fingerprint}"


@dataclass(frozen=True)
class StratumCounts:
    """One stratum of an online run's window: why its traces were or were not judged, and at what rate.

    ``seen``: traces of the stratum read in the window; ``filtered``: left out
    by the policy's ``where``; ``sampled``: the rest with u < ``rate``;
    ``enqueued``: items the scan that wrote these counts sent to the judge
    (a rescan sends only traces not stored before). Sampled rows weigh 1/rate.
    """

    stratum: str
    seen: int
    filtered: int
    sampled: int
    enqueued: int
    rate: float

    def __post_init__(self) -> None:
        check_rate(self.rate, f"the rate of stratum {self.stratum!r}")
        for name in ("seen", "filtered", "sampled", "enqueued"):
            if getattr(self, name) < 0:
                raise LedgerArgumentError(f"stratum {self.stratum!r}: {name} must be 0 or more, not {getattr(self, name)}")
        if self.filtered + self.sampled > self.seen:
            raise LedgerArgumentError(f"stratum {self.stratum!r}: {self.filtered} filtered out and {self.sampled} "
                                      f"sampled of {self.seen} seen; a trace is filtered, sampled or neither")


def check_rate(rate: float, what: str) -> float:
    """``rate`` if it is a sampling probability (a number in [0, 1]); LedgerArgumentError naming ``what`` otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise LedgerArgumentError(f"{what} must be a probability between 0 and 1, not {rate!r}")
    return float(rate)
