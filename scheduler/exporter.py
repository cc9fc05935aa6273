"""The Prometheus collector of ``judgeq exporter``: a snapshot of the ledger turned into metric families.

The metrics (README, "Metrics and traces", lists them with their labels):

- ``app_eval_<eval>{kind, <slices>}``: the weighted mean score (weights 1/p
  online, 1 offline) of the verdicts written over the last ``--window``, over
  all the judge's versions, so a new judge version does not start a new series;
  ``judgeq_eval_window_verdicts{judge, judge_version, kind}`` says which
  versions wrote them. With slices, each kind also has its all-traffic series,
  every slice label empty (:data:`ALL_TRAFFIC`): Prometheus stores an empty
  label as no label, so it is ``app_eval_<eval>{kind="online"}`` itself, and
  ``{locale=""}`` selects it apart from the slices.
- ``judgeq_scores_total{judge, status}``, ``judgeq_cost_usd_total{judge}`` and
  the histogram ``judgeq_judge_latency_seconds{judge}`` (rows judged, not
  served from the verdict cache): the rows written since the exporter started
  (``scheduler.metrics.Counters``), so they only grow.
- ``judgeq_spent_today_usd{judge}`` (online rows, the UTC day),
  ``judgeq_budget_usd_per_day{scope}``, ``judgeq_budget_spent_today_usd{scope}``,
  ``judgeq_budget_reserved_usd{scope}``, ``judgeq_sampling_rate{schedule, judge, stratum}``,
  ``judgeq_canary_agreement{judge, judge_version}`` (the newest canary check's).
- ``judgeq_queue_depth{queue}`` and ``judgeq_broker_up`` with a broker;
  ``judgeq_ledger_up``; the exporter's own ``judgeq_exporter_*``.

The collector is called per scrape; the snapshot behind it is cached
(``scheduler.metrics.SnapshotCache``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .metrics import ExporterConfig, Snapshot, SnapshotCache, label_values, metric_name

#: The slice label value of the all-traffic series: empty, which Prometheus reads as the label's absence.
ALL_TRAFFIC = ""

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .settings import CliSettings


class LedgerCollector(Collector):
    """Yields the metric families of the cached snapshot (see the module's docstring)."""

    def __init__(self, cache: SnapshotCache, config: ExporterConfig) -> None:
        self.cache = cache
        self.config = config

    def collect(self) -> Iterator[Metric]:
        snapshot = self.cache.get()
        yield from exporter_families(self.cache, snapshot)
        yield _gauge("judgeq_ledger_up", "1 when the last snapshot could read the ledger, else 0",
                     [((), 1.0 if snapshot.ledger_up else 0.0)])
        if snapshot.broker_up is not None:
            yield _gauge("judgeq_broker_up", "1 when the broker answered the last snapshot, else 0",
                         [((), 1.0 if snapshot.broker_up else 0.0)])
        if snapshot.queues is not None:
            yield _gauge("judgeq_queue_depth", "Chunk messages waiting in each Celery queue (Redis LLEN)",
                         sorted(((name,), float(depth)) for name, depth in snapshot.queues.items()), ("queue",))
        if not snapshot.ledger_up:
            return
        yield from self._evals(snapshot)
        yield from _totals(snapshot)
        yield from _budgets(snapshot)

    def _evals(self, snapshot: Snapshot) -> Iterator[Metric]:
        width = len(self.config.slices)
        labels = label_values(snapshot.means, width, self.config.max_values)
        sums: dict[str, dict[tuple[str, ...], list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
        versions: dict[tuple[str, str, str], int] = defaultdict(int)
        for mean in snapshot.means:
            key = (mean.kind, *(labels[i][value] for i, value in enumerate(mean.slices)))
            for series in (key, (mean.kind, *[ALL_TRAFFIC] * width)) if width else (key,):
                acc = sums[mean.eval][series]
                acc[0] += mean.weighted_sum
                acc[1] += mean.weight
            versions[(mean.eval, mean.judge_version, mean.kind)] += mean.rows
        names = ("kind", *(s.label for s in self.config.slices))
        window = f"{snapshot.window.total_seconds():g} s"
        seen: dict[str, str] = {}
        for eval_name in sorted(sums):
            name = metric_name(eval_name)
            if name in seen:  # two evals whose names differ only in characters Prometheus does not allow
                continue
            seen[name] = eval_name
            samples = [(key, total / weight) for key, (total, weight) in sorted(sums[eval_name].items()) if weight > 0]
            yield _gauge(name, f"Weighted mean score of judge {eval_name!r} over the verdicts written in the last "
                         f"{window} (weights 1/p online)", samples, names)
        yield _gauge("judgeq_eval_window_verdicts", f"Verdicts written in the last {window}, by judge version",
                     sorted((key, float(n)) for key, n in versions.items()), ("judge", "judge_version", "kind"))


def _totals(snapshot: Snapshot) -> Iterator[Metric]:
    from ledger.stores.metrics import LATENCY_BUCKETS

    rows = CounterMetricFamily("judgeq_scores", "Ledger rows (judged items) by judge and status", labels=("judge",
                                                                                                          "status"))
    cost = CounterMetricFamily("judgeq_cost_usd", "USD spent on judge calls, every row of the ledger",
                               labels=("judge",))
    latency = HistogramMetricFamily("judgeq_judge_latency_seconds", "Latency of judged rows (not cache hits)",
                                    labels=("judge",))
    by_judge: dict[str, list[Any]] = {}
    for total in snapshot.totals:
        rows.add_metric((total.eval, total.status), total.rows)
        acc = by_judge.setdefault(total.eval, [0.0, 0, 0.0, [0] * len(LATENCY_BUCKETS)])
        acc[0] += total.cost_usd
        acc[1] += total.timed
        acc[2] += total.latency_s
        acc[3] = [a + b for a, b in zip(acc[3], total.buckets, strict=True)]
    for judge, (usd, timed, seconds, buckets) in sorted(by_judge.items()):
        cost.add_metric((judge,), usd)
        latency.add_metric((judge,), [*((f"{b:g}", float(n)) for b, n in zip(LATENCY_BUCKETS, buckets,
                                                                               strict=True)), ("+Inf", float(timed))],
                           sum_value=seconds)
    yield from (rows, cost, latency)


def _budgets(snapshot: Snapshot) -> Iterator[Metric]:
    yield _gauge("judgeq_spent_today_usd", "USD spent by online runs' rows written today (UTC), per judge",
                 sorted(((judge,), usd) for judge, usd in snapshot.spent_today.items()), ("judge",))
    for name, what, attr in (("judgeq_budget_usd_per_day", "Daily budget in USD", "usd_per_day"),
                             ("judgeq_budget_spent_today_usd", "USD the budget's scope spent today (UTC)",
                              "spent_usd"),
                             ("judgeq_budget_reserved_usd", "USD reserved for online runs in flight",
                              "reserved_usd")):
        yield _gauge(name, what, [((line.scope,), float(getattr(line, attr))) for line in snapshot.budgets],
                     ("scope",))
    rates = {(r.schedule, r.judge, r.stratum): r.rate for r in reversed(snapshot.rates)}  # the ledger's win
    yield _gauge("judgeq_canary_agreement", "The newest canary check's label agreement with the reference run "
                 "(judgeq canary check), per judge and judge version",
                 [((c.judge, c.judge_version), float(c.agreement)) for c in snapshot.canaries
                  if c.agreement is not None], ("judge", "judge_version"))
    yield _gauge("judgeq_sampling_rate", "Sampling rate in force per online schedule, judge and stratum "
                 "(* = every stratum without its own)", sorted(rates.items()), ("schedule", "judge", "stratum"))


def _gauge(name: str, documentation: str, samples: Any, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def exporter_families(cache: SnapshotCache, snapshot: Snapshot) -> list[Metric]:
    """The exporter's own figures: snapshots taken, failed, and how long the last took."""
    taken = CounterMetricFamily("judgeq_exporter_snapshots", "Snapshots of the ledger taken", value=cache.taken)
    failed = CounterMetricFamily("judgeq_exporter_snapshot_failures", "Snapshots that could not read the ledger",
                                 value=cache.failures)
    took = _gauge("judgeq_exporter_snapshot_seconds", "Seconds the last snapshot took", [((), snapshot.seconds)])
    return [taken, failed, took]


def serve(settings: CliSettings, *, port: int, address: str, span: timedelta, every: timedelta, shown: str) -> None:
    """``judgeq exporter``: serve ``/metrics`` on ``address:port`` until SIGTERM or Ctrl-C.

    The first snapshot is taken before the server starts, so a bad or
    unreachable ledger is said at once, not at the first scrape; ``shown`` is
    how the startup line names the window and refresh. A port that cannot be
    had is a ``UsageError``.
    """
    import signal
    import sys
    import threading

    from prometheus_client import CollectorRegistry, start_http_server

    from ledger.urls import mask_url

    from .errors import UsageError
    from .metrics import COUNT_LAG, Counters, load_exporter_config, take_snapshot, utc_now

    config_path = settings.config
    config = load_exporter_config(config_path)
    broker_url = settings.worker.broker_url
    ledger = settings.ledger()
    counters = Counters(utc_now() - COUNT_LAG)  # rows written from (about) now on
    cache = SnapshotCache(lambda: take_snapshot(ledger, config, config_path, span, broker_url, utc_now(), counters),
                          every)
    first = cache.get()  # a bad ledger URL or an unreachable ledger is said now, not at the first scrape
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(cache, config))
    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UsageError(f"cannot listen on {address}:{port} ({exc.strerror or exc}); choose another --port or "
                         "--address") from None
    slices = ", ".join(s.path for s in config.slices) or "none"
    print(f"judgeq exporter: http://{address}:{port}/metrics · {shown} · slices "
          f"{slices} · ledger {mask_url(ledger.url)}", file=sys.stderr, flush=True)
    if first.problem:
        print(f"judgeq exporter: {first.problem}", file=sys.stderr, flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    print("judgeq exporter: stopped", file=sys.stderr)
