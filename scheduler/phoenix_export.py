"""``judgeq export-phoenix``: each verdict of a run written back into Arize Phoenix as a span annotation.

A row whose trace id is ``TRACE:SPAN`` (what the ``phoenix`` and ``otlp``
sources give a judged span) becomes an annotation of that span through
Phoenix's ``POST /v1/span_annotations``: ``name`` the eval, ``result`` the
score, label and explanation (the judge's reason), ``annotator_kind`` ``LLM``
for a judge that calls a model (an LLM judge or a cascade) and ``CODE`` for a
local or distilled one, and ``metadata`` the judge version, the run and the
row's weight. Phoenix shows it in its UI beside the trace.

Idempotent: each annotation's ``identifier`` is ``judgeq:<run id>``, and
Phoenix updates an annotation of the same span, name and identifier rather
than adding one, so writing a run again adds nothing; a later run's verdict
on the same span is an annotation of its own. Rows without a verdict, and
ids that name no span, are counted, not sent. A server that cannot be
reached or refuses a batch ends the export with :class:`ExportUnavailable`
(exit 3), saying how many annotations were written before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .errors import ExportUnavailable
from .otel_export import verdicts

if TYPE_CHECKING:
    from ledger.models import Run, Score

BATCH: Final = 100  # annotations a request
TIMEOUT_S: Final = 30.0


@dataclass
class PhoenixCounts:
    """What an export did: annotations written, and rows not sent with why."""

    url: str
    sent: int = 0
    not_scored: int = 0  # error or skipped rows
    no_trace: int = 0  # ids that are no OpenTelemetry trace id
    no_span: int = 0  # trace ids that name no span (a trace id alone)
    runs: list[str] = field(default_factory=list)


def annotator_kind(run: Run, eval_name: str) -> str:
    """``LLM`` for a judge that calls a model, ``CODE`` for one that does not (the run's resolved judge)."""
    return "LLM" if (run.judges.get(eval_name) or {}).get("kind") == "remote" else "CODE"


def annotation(run: Run, row: Score, span_id: str) -> dict[str, Any]:
    """The span annotation of one verdict (see the module's docstring)."""
    return {"span_id": span_id, "name": row.eval, "annotator_kind": annotator_kind(run, row.eval),
            "identifier": f"judgeq:{row.run_id}",
            "result": {"score": float(row.score or 0.0), "label": row.label, "explanation": row.reason or None},
            "metadata": {"judge_version": row.judge_version, "run_id": row.run_id, "weight": float(row.weight),
                         "source": "judgeq"}}


def export_annotations(runs: Sequence[Run], rows_of: Callable[[Run], Iterable[Score]], url: str,
                       headers: dict[str, str], progress: Callable[[int], None] = lambda sent: None) -> PhoenixCounts:
    """Write the verdicts of ``runs`` as span annotations to the Phoenix server at ``url``; the counts."""
    import httpx

    counts = PhoenixCounts(url=url.rstrip("/"))
    endpoint = f"{counts.url}/v1/span_annotations"
    batch: list[dict[str, Any]] = []

    def flush(client: httpx.Client) -> None:
        if not batch:
            return
        try:
            answer = client.post(endpoint, params={"sync": "true"}, json={"data": batch})
        except httpx.HTTPError as exc:
            raise ExportUnavailable(f"cannot reach Phoenix at {counts.url} ({type(exc).__name__}); "
                                    f"{counts.sent} annotations were written before; run export-phoenix again "
                                    "once it is up (it adds nothing twice)") from None
        if answer.status_code != 200:
            raise ExportUnavailable(f"Phoenix at {counts.url} answered {answer.status_code} to {len(batch)} "
                                    f"annotations ({counts.sent} were written before): {answer.text[:200]}")
        counts.sent += len(batch)
        batch.clear()
        progress(counts.sent)

    with httpx.Client(timeout=TIMEOUT_S, headers=headers) as client:
        for run, row, (_, span) in verdicts(runs, rows_of, counts):
            if span is None:
                counts.no_span += 1
                continue
            batch.append(annotation(run, row, f"{span:016x}"))
            if len(batch) >= BATCH:
                flush(client)
        flush(client)
    return counts
