"""The figures ``judgeq exporter`` serves, gathered from the ledger, the config and the broker, cached.

A :class:`Snapshot` is everything one scrape shows, read in one go by
:func:`take_snapshot`; :class:`SnapshotCache` takes a new one at most once per
refresh interval however many scrapes arrive (a scrape storm costs the
database nothing more), and concurrent scrapes wait for the same one.

The counters (rows by status, cost, latency) count the rows written since
the exporter started, as a process's own counters do (Prometheus's
``rate``/``increase`` take a restart as a counter reset): each snapshot adds
the rows written between the previous snapshot's cut and its own, read
through the (eval, ts) index, instead of aggregating the whole table. The cut
trails the clock by :data:`COUNT_LAG`, so a row whose write commits a little
after the ``ts`` it was given is still counted, once.

Slices (``[exporter] slices`` in judgeq.toml) are metadata keys of the
judged records; only they label ``app_eval_<eval>``, and each keeps at most
``max_values`` distinct values per snapshot (the most frequent; the rest
become ``(other)``), so the series Prometheus stores stay bounded whatever
the traffic holds::

    [exporter]
    slices = ["metadata.locale", "metadata.tenant"]
    max_values = 20
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .errors import UsageError

if TYPE_CHECKING:
    from ledger.stores.metrics import ScoreTotals, WindowMean
    from ledger.store import Ledger

    from .budgets import BudgetLine, RateLine

KEYS: Final = ("slices", "max_values")
#: How far the counters' cut trails the clock: rows are given their ``ts`` just before their transaction commits.
COUNT_LAG: Final = timedelta(seconds=30)
DEFAULT_MAX_VALUES: Final = 20
MAX_SLICES: Final = 5
#: The label value of a record without the slice's key, and of values beyond ``max_values``.
NO_VALUE: Final = "(none)"
OTHER: Final = "(other)"
#: Labels the exporter sets itself (and Prometheus's own), which a slice may not take.
RESERVED_LABELS: Final = frozenset({"kind", "judge", "judge_version", "eval", "status", "queue", "scope",
                                    "schedule", "stratum", "job", "instance", "le", "quantile"})
_LABEL: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class Slice:
    """A metadata key that labels ``app_eval_<eval>``: ``metadata.locale`` is the label ``locale``."""

    path: str
    key: str  # the key inside metadata
    label: str


@dataclass(frozen=True)
class ExporterConfig:
    """The ``[exporter]`` table (see the module's docstring)."""

    slices: tuple[Slice, ...] = ()
    max_values: int = DEFAULT_MAX_VALUES


def load_exporter_config(path: Path | None) -> ExporterConfig:
    """The config file's ``[exporter]`` table; UsageError naming file, table and key when it is unusable."""
    from online.errors import OnlineConfigError
    from online.fields import canonical_path
    from online.schedules import read_toml

    where = f"{path or 'judgeq.toml'} [exporter]"
    table = read_toml(path).get("exporter", {})
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: must be a table (slices, max_values)")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(KEYS)}")
    paths = table.get("slices", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) > MAX_SLICES:
        raise UsageError(f'{where} slices: write a list of at most {MAX_SLICES} metadata keys, '
                         'e.g. slices = ["metadata.locale"]')
    slices: list[Slice] = []
    for raw in paths:
        try:
            canonical = canonical_path(raw, f"{where} slices")
        except OnlineConfigError as exc:
            raise UsageError(str(exc)) from None
        head, _, key = canonical.partition(".")
        if head != "metadata" or not key or "." in key:
            raise UsageError(f'{where} slices: {raw!r} is not a metadata key; a slice is a key of the records\' '
                             'metadata (bounded values such as a locale or tenant), e.g. "metadata.locale"')
        label = re.sub(r"[^a-zA-Z0-9_]", "_", key)
        label = label if _LABEL.fullmatch(label) else f"_{label}"
        if label.startswith("__") or label in RESERVED_LABELS:
            raise UsageError(f"{where} slices: {raw!r} would be the label {label!r}, which is reserved "
                             f"({', '.join(sorted(RESERVED_LABELS))}, and names starting with '__'); "
                             "rename the metadata key")
        if any(s.label == label for s in slices):
            raise UsageError(f"{where} slices: {raw!r} and another slice are both the label {label!r}; keep one")
        slices.append(Slice(path=canonical, key=key, label=label))
    limit = table.get("max_values", DEFAULT_MAX_VALUES)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise UsageError(f"{where} max_values: {limit!r} is not a count; write 1 to 1000 (values per slice key)")
    return ExporterConfig(slices=tuple(slices), max_values=limit)


@dataclass(frozen=True)
class Snapshot:
    """What one scrape shows (``ledger_up`` false: the ledger could not be read, and its figures are empty)."""

    taken_at: datetime
    window: timedelta
    means: Sequence[WindowMean] = ()
    totals: Sequence[ScoreTotals] = ()
    spent_today: Mapping[str, float] = field(default_factory=dict)
    budgets: Sequence[BudgetLine] = ()
    rates: Sequence[RateLine] = ()
    canaries: Sequence[Any] = ()  # each judge version's newest canary check (ledger.models.CanaryCheck)
    queues: Mapping[str, int] | None = None  # None: no broker configured, or it could not be reached
    ledger_up: bool = True
    broker_up: bool | None = None  # None: no broker configured
    problem: str | None = None  # why something could not be read, for the log
    seconds: float = 0.0  # how long taking it took


class Counters:
    """Running totals per (eval, status) of the rows written since ``since`` (see the module's docstring)."""

    def __init__(self, since: datetime) -> None:
        self.cut = since
        self.totals: dict[tuple[str, str], ScoreTotals] = {}

    def advance(self, ledger: Ledger, cut: datetime) -> list[ScoreTotals]:
        """Add the rows written in [previous cut, ``cut``); the totals so far. A failed read changes nothing."""
        if cut > self.cut:
            for found in ledger.metrics.score_totals(self.cut, cut):
                key = (found.eval, found.status)
                self.totals[key] = found if key not in self.totals else _plus(self.totals[key], found)
            self.cut = cut
        return [self.totals[key] for key in sorted(self.totals)]


def _plus(a: ScoreTotals, b: ScoreTotals) -> ScoreTotals:
    from dataclasses import replace

    return replace(a, rows=a.rows + b.rows, cost_usd=a.cost_usd + b.cost_usd, timed=a.timed + b.timed,
                   latency_s=a.latency_s + b.latency_s,
                   buckets=tuple(x + y for x, y in zip(a.buckets, b.buckets, strict=True)))


def take_snapshot(ledger: Ledger, config: ExporterConfig, config_path: Path, window: timedelta,
                  broker_url: str | None, now: datetime, counters: Counters) -> Snapshot:
    """Read every figure as of ``now``: the ledger's (window means, totals, today's spend, budgets and rates)
    and the broker's queue depths."""
    from ledger.budget_rows import day_bounds
    from ledger.errors import LedgerError

    from .budgets import gather, rates_in_force, schedules_of

    started = time.perf_counter()
    queues, broker_up, problem = _queue_depths(broker_url)
    try:
        means = ledger.metrics.window_means(now - window, now, [s.key for s in config.slices])
        totals = counters.advance(ledger, now - COUNT_LAG)
        start, end = day_bounds(now.date())
        spent = ledger.metrics.spent_by_judge(start, end)
        report = gather(ledger, now.date(), now, config_path)
        schedules, _ = schedules_of(config_path)
        rates = rates_in_force(ledger, schedules, None, None)
        canaries = ledger.canary.latest()
    except LedgerError as exc:
        return Snapshot(taken_at=now, window=window, queues=queues, ledger_up=False, broker_up=broker_up,
                        problem=f"ledger: {exc}", seconds=time.perf_counter() - started)
    return Snapshot(taken_at=now, window=window, means=means, totals=totals, spent_today=spent,
                    budgets=report.budgets, rates=rates, canaries=canaries, queues=queues, broker_up=broker_up,
                    problem=problem or report.config_problem, seconds=time.perf_counter() - started)


def _queue_depths(broker_url: str | None) -> tuple[dict[str, int] | None, bool | None, str | None]:
    """LLEN of each Celery queue on the broker: (depths, reachable, problem); (None, None, None) without one."""
    if not broker_url:
        return None, None, None
    import redis

    from runs.queues import QUEUES

    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            with client.pipeline(transaction=False) as pipe:
                for name in QUEUES:
                    pipe.llen(name)
                depths = pipe.execute()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return None, False, f"broker: {exc}"
    return {name: int(depth) for name, depth in zip(QUEUES, depths, strict=True)}, True, None


class SnapshotCache:
    """The latest snapshot, taken again only once ``refresh`` has passed since the last (one taker at a time)."""

    def __init__(self, take: Callable[[], Snapshot], refresh: timedelta,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._take = take
        self._refresh = refresh.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._at = 0.0
        self.taken = 0  # snapshots taken, for the exporter's own metrics
        self.failures = 0  # snapshots that could not read the ledger

    def get(self) -> Snapshot:
        """The cached snapshot, or a new one when it is older than the refresh interval."""
        with self._lock:
            if self._latest is None or self._clock() - self._at >= self._refresh:
                self._latest = self._take()
                self._at = self._clock()
                self.taken += 1
                self.failures += 0 if self._latest.ledger_up else 1
            return self._latest


def utc_now() -> datetime:
    """The current time in UTC (the snapshot's clock)."""
    return datetime.now(UTC)


def label_values(means: Sequence[WindowMean], width: int, max_values: int) -> list[dict[str | None, str]]:
    """Per slice position, each value's label: itself for the ``max_values`` most frequent (by rows), ``(other)``
    beyond, ``(none)`` for None."""
    out: list[dict[str | None, str]] = []
    for position in range(width):
        counts: dict[str | None, int] = {}
        for mean in means:
            value = mean.slices[position]
            counts[value] = counts.get(value, 0) + mean.rows
        ranked = sorted((v for v in counts if v is not None), key=lambda v: (-counts[v], v))
        kept = set(ranked[:max_values])
        labels: dict[str | None, str] = {v: v if v in kept else OTHER for v in ranked}
        labels[None] = NO_VALUE
        out.append(labels)
    return out


def metric_name(eval_name: str) -> str:
    """``app_eval_<eval>`` with the eval's name made a valid Prometheus metric name (other characters: ``_``)."""
    return "app_eval_" + re.sub(r"[^a-zA-Z0-9_]", "_", eval_name)

