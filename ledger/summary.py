"""Per-eval figures of a run: counts, weighted mean score, cost, latency percentiles, tokens, errors by kind.

Sums and counts are computed by the database (one GROUP BY over the run's
rows, which the primary key's run_id prefix finds); latency percentiles and
judge versions come from one streamed pass over (eval, judge_version,
latency), since SQLite has no percentile function. Percentiles interpolate
linearly between order statistics (numpy's default, PostgreSQL's
``percentile_cont``). Error rows are counted per ``error_kind`` by a second
GROUP BY over the run's error rows alone, with the least error text of each
kind as its sample (MIN: deterministic, and as cheap as the count).
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Sequence
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.models import SCORES
from ledger.queries import STREAM_BATCH, TRANSIENT
from ledger.rows import ErrorKindCount, EvalSummary, ProviderIdentity

SAMPLE_CHARS: Final = 1000  # an error sample is cut to this many characters (its next step is at its end)

#: Error kinds that mean the provider refused the judge's account (or the circuit that opened on it).
ACCOUNT_KINDS: Final = ("account", "circuit")

_ok = SCORES.c.status == "ok"
_scored = sa.and_(_ok, SCORES.c.score.is_not(None))


def summarize(conn: Connection, run_id: str) -> list[EvalSummary]:
    """One EvalSummary per eval that has rows in the run, ordered by eval name."""
    latencies, versions = _latencies_and_versions(conn, run_id)
    totals = (
        sa.select(
            SCORES.c.eval,
            sa.func.count(),
            sa.func.count().filter(_ok),
            sa.func.count().filter(SCORES.c.status == "error"),
            sa.func.count().filter(SCORES.c.status == "skipped"),
            sa.func.count().filter(SCORES.c.cached.is_(True)),
            sa.func.sum(SCORES.c.weight * SCORES.c.score).filter(_scored),
            sa.func.sum(SCORES.c.weight).filter(_scored),
            sa.func.sum(SCORES.c.cost_usd),
            sa.func.sum(SCORES.c.tokens_in),
            sa.func.sum(SCORES.c.tokens_out),
            sa.func.sum(SCORES.c.saved_usd),
            sa.func.count().filter(SCORES.c.error_kind.in_(ACCOUNT_KINDS)),
            sa.func.count().filter(TRANSIENT),
        )
        .where(SCORES.c.run_id == run_id)
        .group_by(SCORES.c.eval)
        .order_by(SCORES.c.eval)
    )
    kinds = _error_kinds(conn, run_id)
    providers = provider_identities(conn, [run_id])
    summaries = []
    for (name, n, ok, errors, skipped, cached, sum_ws, sum_w, cost, t_in, t_out, saved, account,
         transient) in conn.execute(totals):
        p50, p95 = _percentiles(latencies.get(name))
        summaries.append(
            EvalSummary(
                eval=name,
                n=int(n),
                ok=int(ok),
                errors=int(errors),
                skipped=int(skipped),
                cached=int(cached),
                mean=float(sum_ws) / float(sum_w) if sum_w else None,
                cost_usd=float(cost or 0.0),
                latency_p50_s=p50,
                latency_p95_s=p95,
                tokens_in=int(t_in or 0),
                tokens_out=int(t_out or 0),
                judge_versions=tuple(sorted(versions[name])),
                saved_usd=float(saved or 0.0),
                account_errors=int(account),
                transient_errors=int(transient),
                error_kinds=tuple(kinds.get(name, ())),
                providers=tuple(providers.get(name, ())),
            )
        )
    return summaries


def provider_identities(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[ProviderIdentity]]:
    """Each eval's models and system fingerprints the provider said answered, over ``run_ids``' rows, the first
    seen first (rows that name neither, a local judge's, are left out)."""
    stmt = (
        sa.select(SCORES.c.eval, SCORES.c.provider_model, SCORES.c.system_fingerprint, sa.func.count(),
                  sa.func.min(SCORES.c.ts), sa.func.max(SCORES.c.ts))
        .where(SCORES.c.run_id.in_(list(run_ids)),
               sa.or_(SCORES.c.provider_model.is_not(None), SCORES.c.system_fingerprint.is_not(None)))
        .group_by(SCORES.c.eval, SCORES.c.provider_model, SCORES.c.system_fingerprint)
    )
    found: dict[str, list[ProviderIdentity]] = defaultdict(list)
    for name, model, fingerprint, count, first, last in conn.execute(stmt):
        found[name].append(ProviderIdentity(model, fingerprint, int(count), first, last))
    for identities in found.values():
        identities.sort(key=lambda i: (i.first_ts, i.model or "", i.fingerprint or ""))
    return found


def _error_kinds(conn: Connection, run_id: str) -> dict[str, list[ErrorKindCount]]:
    """Each eval's error rows by kind, the commonest first (ties by kind name), with a sample text each."""
    stmt = (
        sa.select(SCORES.c.eval, SCORES.c.error_kind, sa.func.count(), sa.func.min(SCORES.c.error))
        .where(SCORES.c.run_id == run_id, SCORES.c.status == "error")
        .group_by(SCORES.c.eval, SCORES.c.error_kind)
    )
    kinds: dict[str, list[ErrorKindCount]] = defaultdict(list)
    for name, kind, count, sample in conn.execute(stmt):
        text = " ".join(str(sample or "").split())
        if len(text) > SAMPLE_CHARS:
            text = text[:SAMPLE_CHARS] + "…"
        kinds[name].append(ErrorKindCount(kind, int(count), text))
    for counts in kinds.values():
        counts.sort(key=lambda k: (-k.count, k.kind or ""))
    return kinds


def _latencies_and_versions(
    conn: Connection, run_id: str
) -> tuple[dict[str, array[float]], dict[str, set[str]]]:
    """Latencies of judged (not skipped) rows, and the judge versions seen, per eval."""
    latencies: dict[str, array[float]] = defaultdict(lambda: array("d"))
    versions: dict[str, set[str]] = defaultdict(set)
    stmt = sa.select(SCORES.c.eval, SCORES.c.judge_version, SCORES.c.status, SCORES.c.latency_s).where(
        SCORES.c.run_id == run_id
    )
    rows = conn.execute(stmt.execution_options(yield_per=STREAM_BATCH))
    for name, version, status, latency in rows:
        versions[name].add(version)
        if status != "skipped":
            latencies[name].append(latency)
    return latencies, versions


def _percentiles(values: array[float] | None) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    import numpy as np  # lazily: the CLI's startup time does not pay for numpy

    p50, p95 = np.percentile(np.frombuffer(values, dtype=np.float64), [50, 95])
    return float(p50), float(p95)
