"""Scorecards and comparisons for people (rich tables) and machines (JSON-ready dicts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scheduler.assess import Assessment

from .console import console as _console


def _f(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def card_json(card: Any) -> dict[str, Any]:
    """One scorecard row (``ledger.scorecard.Card``) as JSON."""
    est = card.estimate
    return {
        "judge": card.eval, "slice": card.slice, "n": card.n, "ok": card.ok, "errors": card.errors,
        "skipped": card.skipped, "binary": card.binary,
        "mean": _num(est.mean) if est else None, "ci_low": _num(est.lo) if est else None,
        "ci_high": _num(est.hi) if est else None, "interval": est.method if est else None,
        "se": _num(est.se) if est else None, "se_naive": _num(est.se_naive) if est else None,
        "n_clusters": est.n_clusters if est else None, "deff": _num(est.deff) if est else None,
        "cost_usd": card.cost_usd, "cost_per_item_usd": card.cost_per_item_usd,
        "latency_p50_s": card.latency_p50_s, "latency_p95_s": card.latency_p95_s,
        "wait_p50_s": card.wait_p50_s, "wait_p95_s": card.wait_p95_s,
        "small": card.small, "unclustered": card.unclustered,
    }


def _paired_json(p: Any) -> dict[str, Any]:
    est, test = p.estimate, p.test
    return {
        "slice": p.slice, "n_paired": p.n, "binary": p.binary, "base_mean": _num(p.base_mean),
        "cand_mean": _num(p.cand_mean), "delta": _num(est.mean) if est else None,
        "ci_low": _num(est.lo) if est else None, "ci_high": _num(est.hi) if est else None,
        "se": _num(est.se) if est else None, "se_naive": _num(est.se_naive) if est else None,
        "test": None if test is None else {"name": test.name, "statistic": _num(test.statistic),
                                           "p_value": _num(test.p_value)},
        "pass_to_fail": test.discordant[0] if test and test.discordant else None,
        "fail_to_pass": test.discordant[1] if test and test.discordant else None,
        "small": p.small,
    }


def comparison_json(c: Any) -> dict[str, Any]:
    """One judge's comparison (``ledger.compare.EvalComparison``) as JSON."""
    flip = lambda f: {"id": f.trace_id, "base": f.base, "cand": f.cand, "excerpt": f.excerpt}  # noqa: E731
    return {
        "judge": c.eval, **_paired_json(c.overall),
        "worse": [flip(f) for f in c.worse], "better": [flip(f) for f in c.better],
        "only_base": c.only_base, "only_cand": c.only_cand, "unpaired": c.unpaired,
        "slices": [_paired_json(s) for s in c.slices],
    }


def extend_payload(payload: dict[str, Any], a: Assessment) -> dict[str, Any]:
    """Add the scorecard, baseline comparison and gate kinds to a ``run_payload``."""
    if a.cards:
        payload["scorecard"] = [card_json(c) for c in a.cards]
    if a.baseline is not None:
        payload["baseline"] = {"id": a.baseline.id, "tags": a.baseline.tags, "meta": a.baseline.meta}
        payload["comparisons"] = [comparison_json(c) for c in a.comparisons]
    for entry, result in zip(payload.get("gates", []), a.results):
        entry["kind"] = "absolute" if hasattr(result.gate, "op") else "baseline"
        entry["judge"] = result.gate.judge
        entry["regressed"] = list(result.regressed)
    if a.results:
        payload["gate_on"] = a.options.gate_on
    return payload


def scorecard_table(a: Assessment) -> None:
    """Print the scorecard: quality with its interval, errors, cost and latency, per judge and slice."""
    from rich.table import Table

    console = _console()
    clustered = a.options.cluster_by is not None
    sliced = any(c.slice is not None for c in a.cards)
    run = a.run
    table = Table(title=f"run {run.id} · {run.dataset_name} · {run.status}", title_justify="left")
    cols = ["judge"] + (["slice"] if sliced else []) + ["items", "mean", "95% CI", "se"]
    cols += (["se clustered", "clusters"] if clustered else []) + ["errors", "skipped", "cost $", "$/item",
                                                                   "p50 s", "p95 s", "wait p50", "wait p95"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("judge", "slice") else "right")
    for c in a.cards:
        est = c.estimate
        slice_name = (c.slice or "") + (" [yellow](small)[/yellow]" if c.small else "")
        row = [c.eval if c.slice is None else ""] + ([slice_name] if sliced else []) + [
            f"{c.ok}", _f(est.mean if est else None, ".4f"),
            f"{_f(est.lo, '.3f')}–{_f(est.hi, '.3f')}" if est else "–",
            _f(est.se_naive if clustered and est else (est.se if est else None), ".4f")]
        if clustered:
            row += [_f(est.se if est else None, ".4f"), f"{est.n_clusters}" if est and est.n_clusters else "–"]
        row += [f"[red]{c.errors}[/red]" if c.errors else "0", f"{c.skipped}", _f(c.cost_usd, ".4f"),
                _f(c.cost_per_item_usd, ".6f"), _f(c.latency_p50_s, ".3f"), _f(c.latency_p95_s, ".3f"),
                _f(c.wait_p50_s, ".3f"), _f(c.wait_p95_s, ".3f")]
        table.add_row(*row)
    console.print(table)
    if clustered:
        console.print(f"errors clustered by metadata '{a.options.cluster_by}' (CR1); "
                      "items without it count as clusters of one")
    if a.baseline is not None:
        comparison_table(a.baseline.id, run.id, a.comparisons, show=10, console=console)
    for g in a.results:
        style = "green" if g.passed else "bold red"
        console.print(f"[{style}]gate {g.detail}[/{style}]")


def comparison_table(base_id: str, cand_id: str, comparisons: Sequence[Any], show: int = 20,
                     console: Any = None) -> None:
    """Print the paired comparison per judge (and slice), then the flipped and one-sided items."""
    from rich.table import Table

    console = console or _console()
    table = Table(title=f"{cand_id} vs baseline {base_id} (paired, candidate - baseline)", title_justify="left")
    for col in ("judge", "slice", "paired", "base", "cand", "delta", "95% CI", "test", "p", "worse", "better"):
        table.add_column(col, justify="left" if col in ("judge", "slice", "test") else "right")
    for c in comparisons:
        for p in [c.overall, *c.slices]:
            est, test = p.estimate, p.test
            worse = test.discordant[0] if test and test.discordant else len(c.worse) if p.slice is None else "–"
            better = test.discordant[1] if test and test.discordant else len(c.better) if p.slice is None else "–"
            table.add_row(
                c.eval if p.slice is None else "", (p.slice or "") + (" (small)" if p.small else ""), f"{p.n}",
                _f(p.base_mean, ".4f"), _f(p.cand_mean, ".4f"), _f(est.mean if est else None, "+.4f"),
                f"{_f(est.lo, '+.3f')}…{_f(est.hi, '+.3f')}" if est else "–", test.name if test else "–",
                _f(test.p_value if test else None, ".3g"), f"{worse}", f"{better}")
    console.print(table)
    for c in comparisons:
        label = "pass→fail" if c.overall.binary else "score down"
        for f in c.worse[:show]:
            console.print(f"  {c.eval} {label}: {f.trace_id} ({f.base:g}→{f.cand:g}) {f.excerpt}")
        if len(c.worse) > show:
            console.print(f"  … {len(c.worse) - show} more (see --json)")
        label = "fail→pass" if c.overall.binary else "score up"
        for f in c.better[:show]:
            console.print(f"  {c.eval} {label}: {f.trace_id} ({f.base:g}→{f.cand:g}) {f.excerpt}")
        for ids, what in ((c.only_base, "only in the baseline"), (c.only_cand, "only in the candidate"),
                          (c.unpaired, "not scored in one run (error or skip)")):
            if ids:
                more = f", … {len(ids) - show} more" if len(ids) > show else ""
                console.print(f"  {c.eval}: {len(ids)} items {what}: {', '.join(ids[:show])}{more}")


def note_lines(summaries: Sequence[Any]) -> list[str]:
    """The lines under a run's table: why the errors column is not 0 (``--json``: judges[].error_kinds), and
    when what answered behind a judge's model changed within the run (judges[].providers)."""
    from online.providers import provider_lines
    from scheduler.causes import error_lines

    from .render import printable

    # the provider's own text goes through printable(): no terminal control gets through
    return [*error_lines(summaries), *(printable(line) for line in provider_lines(summaries))]


def deliver(a: Assessment, progress: Any, complete: bool, *, json_out: bool, junit: Any = None,
            markdown: Any = None, scorecard: bool = True, cascades: Sequence[dict[str, Any]] = ()) -> None:
    """Print the assessment (JSON, the scorecard, or the short summary table) and write the CI files.

    ``cascades``: the run's cascade figures (``scheduler.cascades``), shown after the scorecard.
    """
    from .cascades import print_cascades
    from .render import print_json, run_payload, summary_table

    if json_out:
        payload = extend_payload(run_payload(a.run, a.summaries, progress, a.results, complete), a)
        print_json({**payload, "cascades": list(cascades)} if cascades else payload)
    elif scorecard and a.cards:
        scorecard_table(a)
    else:
        summary_table(a.run, a.summaries, a.results)
    if not json_out:
        for line in note_lines(a.summaries):
            print(line)
        print_cascades(cascades)
    if junit is not None:
        from scheduler.formats import write_junit

        write_junit(junit, a)
    if markdown is not None:
        from scheduler.formats import write_markdown

        write_markdown(markdown, a)


def show_comparison(ledger: Any, base_id: str, cand_id: str, options: Any, *, show: int, json_out: bool) -> None:
    """``judgeq compare``: the paired comparison of two runs per judge (``options``: a GateOptions)."""
    from scheduler.assess import compare
    from scheduler.errors import UsageError

    from .render import print_json

    base, cand = ledger.runs.get_run(base_id), ledger.runs.get_run(cand_id)
    comparisons = compare(ledger, base, cand, options, excerpts=max(show, 50))
    if not comparisons:
        raise UsageError(f"runs {base_id} and {cand_id} share no judge with rows "
                         f"({', '.join(base.judges)} vs {', '.join(cand.judges)}); compare runs of the same judges")
    if json_out:
        print_json({"base": {"id": base.id, "dataset_name": base.dataset_name, "status": base.status},
                    "cand": {"id": cand.id, "dataset_name": cand.dataset_name, "status": cand.status},
                    "judges": [comparison_json(c) for c in comparisons]})
        return
    comparison_table(base.id, cand.id, comparisons, show=show)
