"""The ledger's tables, all of them: runs, their items, one score row per judged item,
for online runs the per-stratum counts of a window and the sampling rates in force,
and the daily budgets that steer those rates (with their history, decisions and reservations),
and the outcome of every drift check.

This module is the data layout; migrations in ``ledger/migrations/versions``
must produce exactly these tables (a test compares them). The models use a
registry of their own, so the ledger's metadata holds only ledger tables.

SQLModel does not validate table models on construction: ``Run(kind="x")``
is accepted in Python and refused by the database's CHECK constraint.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

RunKind = Literal["offline", "online"]
RunStatus = Literal["submitting", "running", "done", "abandoned", "stopped"]
ScoreStatus = Literal["ok", "error", "skipped"]

RUN_KINDS: Final = ("offline", "online")
#: submitting: items being stored and sent; running: all sent; done: every row written;
#: abandoned: given up (cut off, or its file changed while it was read); no gate or baseline uses it.
#: "stopped": an embedded run whose process was interrupted before its rows were all written; nothing judges
#: it until ``judgeq resume`` (migration 0010).
RUN_STATUSES: Final = ("submitting", "running", "done", "abandoned", "stopped")
SCORE_STATUSES: Final = ("ok", "error", "skipped")
RATE_RANGE: Final = "rate >= 0 AND rate <= 1"  # a sampling probability
#: Where budget changes come from: the ``judgeq budget`` CLI, Flower's task API, or a program's call.
BUDGET_VIAS: Final = ("cli", "flower", "api")
#: The most USD per day a budget may be: a bound that also keeps NaN and infinity out (PostgreSQL's
#: NaN and Infinity are >= 0; both are > this).
MAX_USD_PER_DAY: Final = 1e12
USD_RANGE: Final = "usd_per_day >= 0 AND usd_per_day <= 1e12"  # MAX_USD_PER_DAY
#: A drift check's verdict on one slice (``online.drift``): alert, ok, too small to tell, or no row in a span.
DRIFT_STATUSES: Final = ("alert", "ok", "too_small", "no_data")
#: Who ran a drift check: ``judgeq drift``, or beat's ``judgeq.drift_tick``.
DRIFT_VIAS: Final = ("cli", "beat")

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

ledger_registry = registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerModel(SQLModel, registry=ledger_registry):
    """Base of the ledger's tables; its ``metadata`` is the ledger schema."""


class Run(LedgerModel, table=True):
    """One submission: a frozen dataset (offline) or a sampled window of traces (online)."""

    __tablename__ = "runs"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", RUN_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
        sa.Index("ix_runs_kind_dataset_name_window", "kind", "dataset_name", "window"),  # a schedule's windows
    )

    id: str = Field(primary_key=True)
    kind: RunKind = Field(sa_type=sa.String)
    dataset_name: str
    dataset_hash: str | None = None
    window: str | None = None
    judges: dict[str, dict[str, Any]] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    n_items: int = 0
    expected: int = 0  # n_items x number of judges: the score rows that complete the run
    status: RunStatus = Field(default="submitting", sa_type=sa.String)
    created_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    meta: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)
    max_cost_usd: float | None = None  # --max-cost
    no_cache: bool = False  # --no-cache: remote judges call even for items with a cached verdict


class Item(LedgerModel, table=True):
    """One record of a run, stored so that a run can be resumed without its source file."""

    __tablename__ = "items"
    __table_args__ = (sa.Index("ix_items_run_seq", "run_id", "seq"),)

    run_id: str = Field(primary_key=True)
    trace_id: str = Field(primary_key=True)
    seq: int  # position in the dataset
    content_hash: str
    record: dict[str, Any] = Field(
        sa_type=sa.JSON, nullable=False
    )  # id, input, output, context, expected, metadata, ts
    weight: float | None = None  # an online sample's 1/p (None: offline, weight 1); what resume sends again
    stratum: str | None = None  # an online sample's stratum


class Score(LedgerModel, table=True):
    """The ledger row: one verdict per run x trace x eval, pinned to its judge version."""

    __tablename__ = "scores"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", SCORE_STATUSES), name="status"),
        sa.Index("ix_scores_verdict_cache", "judge_version", "content_hash"),
        sa.Index("ix_scores_eval_ts", "eval", "ts"),  # a judge's spend, cost per item and cache hits over time
    )

    run_id: str = Field(primary_key=True)
    trace_id: str = Field(primary_key=True)
    eval: str = Field(primary_key=True)
    score: float | None = None
    label: str | None = None
    reason: str = Field(default="", sa_type=sa.Text)
    judge_version: str
    dataset: str  # dataset hash (offline) or window id (online)
    ts: datetime = Field(default_factory=utcnow)  # when the row was written
    cost_usd: float = 0.0
    latency_s: float = 0.0  # the judge calls' own time (migration 0010: before it, waits were included)
    wait_s: float = 0.0  # time the item waited to be called: rate limit slots, backoff, hand-backs (0010)
    tokens_in: int = 0
    tokens_out: int = 0
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    status: ScoreStatus = Field(default="ok", sa_type=sa.String)
    cached: bool = False
    weight: float = 1.0  # 1/p, the inverse of the sampling probability
    stratum: str | None = None
    cluster: str | None = None
    content_hash: str | None = None  # hash of the judged fields: the verdict cache's key
    saved_usd: float = 0.0  # a cache hit: what the verdict cost when it was first paid for
    error_kind: str | None = None  # why an error or skip: transient, answer, fatal, forbidden, account, circuit,
    #                                poison, setup, internal, budget (README lists them)
    confidence: float | None = None  # a distilled judge's (or cascade's student's) probability of its label
    stage: str | None = None  # a cascade's row: "first" (its distilled judge decided) or "then" (escalated)
    audit_label: str | None = None  # a cascade's audited row: the teacher's label and score beside the student's
    audit_score: float | None = None
    provider_model: str | None = None  # the model the provider says answered (its response's "model"; 0012)
    system_fingerprint: str | None = None  # the provider's backend configuration, where it sends one (0012)


class WindowStratum(LedgerModel, table=True):
    """Why traces of an online run's window were or were not judged, per stratum: its counts and rate.

    One row per (run, stratum), overwritten by each scan of the window (a
    rescan after late traces writes the window's totals, not an increment).
    """

    __tablename__ = "window_strata"
    __table_args__ = (sa.CheckConstraint(RATE_RANGE, name="rate"),)

    run_id: str = Field(primary_key=True)
    stratum: str = Field(primary_key=True)
    seen: int = 0  # traces of the stratum read in the window
    filtered: int = 0  # left out by the policy's `where`
    sampled: int = 0  # u < rate
    enqueued: int = 0  # items sent to the judge (new ones, over all scans)
    rate: float = 0.0  # the sampling probability p of the stratum; rows weigh 1/p
    updated_at: datetime = Field(default_factory=utcnow)


class SamplingRate(LedgerModel, table=True):
    """A sampling rate set for a schedule's judge and stratum, overriding the configured one.

    The seam the budget controller writes; ``set_by`` and ``reason`` say who
    and why, for the operator reading the table later.
    """

    __tablename__ = "sampling_rates"
    __table_args__ = (sa.CheckConstraint(RATE_RANGE, name="rate"),)

    schedule: str = Field(primary_key=True)
    judge: str = Field(primary_key=True)
    stratum: str = Field(primary_key=True)
    rate: float
    set_by: str
    reason: str = Field(default="", sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow)


class Budget(LedgerModel, table=True):
    """A daily spending cap in USD: global, a judge's, or a judge's within one online schedule.

    ``scope`` is ``global``, ``judge:NAME`` or ``schedule:NAME/judge:NAME``
    (``ledger.budget_rows.budget_scope``). A budget counts the spend of online
    runs only; offline ``--max-cost`` runs have their own cap.
    """

    __tablename__ = "budgets"
    __table_args__ = (sa.CheckConstraint(USD_RANGE, name="usd_per_day"),)

    scope: str = Field(primary_key=True)
    usd_per_day: float
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str


class BudgetChange(LedgerModel, table=True):
    """One change of a budget: who made it, when, through what, from which amount to which.

    ``old_usd`` None: there was no budget; ``new_usd`` None: the budget was removed.
    """

    __tablename__ = "budget_history"
    __table_args__ = (sa.CheckConstraint(_one_of("via", BUDGET_VIAS), name="via"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    scope: str
    old_usd: float | None = None
    new_usd: float | None = None
    who: str
    via: str
    note: str = Field(default="", sa_type=sa.Text)


class BudgetDecision(LedgerModel, table=True):
    """A rate the budget controller chose for a schedule's judge and stratum, and the figures it chose it from.

    Written for every decision so that "why did the rate drop at 14:00?" has
    an answer (``judgeq budget history``). ``day`` is the budget day
    (YYYY-MM-DD) the decision spends from; ``window`` the window it was made
    for, when it was made for one.
    """

    __tablename__ = "budget_decisions"
    __table_args__ = (
        sa.CheckConstraint(RATE_RANGE, name="rate"),
        sa.Index("ix_budget_decisions_day_id", "day", "id"),  # a day's decisions, newest first
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    day: str
    schedule: str
    judge: str
    stratum: str
    window: str | None = None
    rate: float
    expected_count: float  # traces expected in the window, before sampling
    cost_per_item: float  # expected USD per sampled trace (after the cache hit rate)
    budget_left: float  # USD: budget - spent - reserved when deciding (negative when overspent)
    reserved_usd: float  # USD reserved for the window by this decision's plan
    reason: str = Field(default="", sa_type=sa.Text)


class BudgetReservation(LedgerModel, table=True):
    """What enqueueing an online run set aside from its day's budget, until its rows settle it.

    Outstanding while the run is not done: max(0, reserved - the cost of its
    rows so far); nothing once it is done or abandoned (``ledger.stores.budgets``).
    """

    __tablename__ = "budget_reservations"
    __table_args__ = (
        sa.CheckConstraint("reserved_usd >= 0", name="reserved_usd"),
        sa.Index("ix_budget_reservations_day_judge", "day", "judge"),  # a day's outstanding reservations
    )

    run_id: str = Field(primary_key=True)
    day: str
    judge: str
    schedule: str
    reserved_usd: float
    created_at: datetime = Field(default_factory=utcnow)


class DriftCheck(LedgerModel, table=True):
    """One slice of one drift check: the short window's and the long baseline's estimates, the test, the verdict.

    A check writes one row per slice (``slice_key`` None: all traffic), all
    with the same ``check_id``; a check that found no data writes one row,
    status ``no_data``. ``short_windows`` lists the window ids the short span
    held, so a trend can mark the windows where drift fired. Figures that
    could not be computed are NULL (never NaN).
    """

    __tablename__ = "drift_checks"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", DRIFT_STATUSES), name="status"),
        sa.CheckConstraint(_one_of("via", DRIFT_VIAS), name="via"),
        sa.Index("ix_drift_checks_source_judge_at", "source", "judge", "at"),  # a trend's alerts; the newest check
    )

    id: int | None = Field(default=None, primary_key=True)
    check_id: str
    at: datetime  # the check's time: the short span ends at the newest window closed by then
    checked_at: datetime = Field(default_factory=utcnow)
    via: str  # cli or beat
    source: str  # the runs' dataset_name: a schedule, or a source for ad-hoc runs
    judge: str
    short: str  # "1h"
    long: str  # "7d"
    min_drop: float
    short_start: datetime | None = None
    short_end: datetime | None = None
    long_start: datetime | None = None
    long_end: datetime | None = None
    short_windows: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    slice_key: str | None = None
    slice: str
    short_mean: float | None = None
    short_se: float | None = None
    short_n: int = 0
    long_mean: float | None = None
    long_se: float | None = None
    long_n: int = 0
    score_drop: float | None = None  # long mean - short mean
    p_value: float | None = None
    adjusted_p: float | None = None  # Holm's, over the slices tested in this check
    status: str
    correction: str = "holm"


CANARY_STATUSES: Final = ("ok", "alert", "no_data")


class CanaryCheck(LedgerModel, table=True):
    """One judge canary check: a canary run's verdicts against the reference run's, item by item.

    ``agreement`` is the share of paired items given the same label (NULL for a judge without labels),
    with its 95 % Wilson interval; ``mean_abs_diff`` the mean absolute difference of their scores. The
    models the provider said answered each run (``scores.provider_model``) are kept beside them, so a
    moved canary names what changed.
    """

    __tablename__ = "canary_checks"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", CANARY_STATUSES), name="status"),
        sa.Index("ix_canary_checks_judge_at", "judge", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    judge: str
    judge_version: str
    reference_run: str
    run_id: str
    n: int = 0  # items judged in both runs
    agreement: float | None = None
    agreement_lo: float | None = None
    agreement_hi: float | None = None
    mean_abs_diff: float | None = None
    threshold: float
    status: str
    reference_models: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    run_models: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)


# The tables as SQLAlchemy Core sees them: queries are written against these
# (typed column expressions), while rows come back as the classes above.
RUNS: Final[sa.Table] = LedgerModel.metadata.tables["runs"]
ITEMS: Final[sa.Table] = LedgerModel.metadata.tables["items"]
SCORES: Final[sa.Table] = LedgerModel.metadata.tables["scores"]
WINDOW_STRATA: Final[sa.Table] = LedgerModel.metadata.tables["window_strata"]
SAMPLING_RATES: Final[sa.Table] = LedgerModel.metadata.tables["sampling_rates"]
BUDGETS: Final[sa.Table] = LedgerModel.metadata.tables["budgets"]
BUDGET_HISTORY: Final[sa.Table] = LedgerModel.metadata.tables["budget_history"]
BUDGET_DECISIONS: Final[sa.Table] = LedgerModel.metadata.tables["budget_decisions"]
BUDGET_RESERVATIONS: Final[sa.Table] = LedgerModel.metadata.tables["budget_reservations"]
DRIFT_CHECKS: Final[sa.Table] = LedgerModel.metadata.tables["drift_checks"]
CANARY_CHECKS: Final[sa.Table] = LedgerModel.metadata.tables["canary_checks"]
