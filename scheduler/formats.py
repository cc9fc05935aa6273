"""Files for CI systems: JUnit XML (one test case per gate) and a Markdown job summary."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .assess import Assessment

LISTED = 50  # regressed items listed per failure, and flips per judge in Markdown


def junit(a: Assessment) -> ET.ElementTree:
    """The JUnit XML of an assessment: a suite for the run, a case per gate, failures listing regressions."""
    failures = sum(1 for r in a.results if not r.passed)
    suites = ET.Element("testsuites", name="judgeq", tests=str(len(a.results)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"judgeq.{a.run.dataset_name}", tests=str(len(a.results)),
                          failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for key, value in [("run", a.run.id), ("dataset", a.run.dataset_name),
                       ("baseline", a.baseline.id if a.baseline else ""), ("gate_on", a.options.gate_on)]:
        ET.SubElement(props, "property", name=key, value=value)
    for result in a.results:
        kind = "absolute" if hasattr(result.gate, "op") else "baseline"
        case = ET.SubElement(suite, "testcase", classname=f"judgeq.{kind}.{result.gate.judge}",
                             name=str(result.gate), time="0")
        if result.passed:
            ET.SubElement(case, "system-out").text = result.detail
            continue
        failure = ET.SubElement(case, "failure", message=result.detail, type=f"{kind}-gate")
        lines = [result.detail]
        if result.regressed:
            lines.append(f"regressed items ({len(result.regressed)}):")
            lines += [f"  {item}" for item in result.regressed[:LISTED]]
            if len(result.regressed) > LISTED:
                lines.append(f"  … {len(result.regressed) - LISTED} more (judgeq compare)")
        failure.text = "\n".join(lines)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, a: Assessment) -> None:
    junit(a).write(path, encoding="utf-8", xml_declaration=True)


def _f(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(a: Assessment) -> str:
    """A summary fit for a CI job summary page (GitHub's $GITHUB_STEP_SUMMARY and the like)."""
    verdict = "no gates" if not a.results else ("✅ passed" if a.passed else "❌ FAILED")
    out = [f"## judgeq · {a.run.dataset_name} · {verdict}", "",
           f"Run `{a.run.id}` ({a.run.status})" + (f", baseline `{a.baseline.id}`" if a.baseline else "") + ".", ""]
    if a.results:
        out += ["| gate | result | detail |", "| --- | --- | --- |"]
        out += [f"| `{_cell(str(r.gate))}` | {'✅' if r.passed else '❌'} | {_cell(r.detail)} |" for r in a.results]
        out.append("")
    if a.cards:
        out += ["| judge | slice | items | mean | 95% CI | errors | skipped | cost $ | p50 s | p95 s |",
                "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for c in a.cards:
            est = c.estimate
            ci = f"{_f(est.lo, '.3f')}–{_f(est.hi, '.3f')}" if est else "–"
            out.append(f"| {c.eval} | {_cell(c.slice or '')}{' (small)' if c.small else ''} | {c.ok} | "
                       f"{_f(est.mean if est else None, '.4f')} | {ci} | {c.errors} | {c.skipped} | "
                       f"{c.cost_usd:.4f} | {_f(c.latency_p50_s, '.3f')} | {_f(c.latency_p95_s, '.3f')} |")
        out.append("")
    for c in a.comparisons:
        est = c.overall.estimate
        out.append(f"**{c.eval}** vs baseline: {c.overall.n} paired items, delta "
                   f"{_f(est.mean if est else None, '+.4f')} (95% CI {_f(est.lo if est else None, '+.3f')} … "
                   f"{_f(est.hi if est else None, '+.3f')}); {len(c.worse)} worse, {len(c.better)} better; "
                   f"{len(c.only_base)} only in baseline, {len(c.only_cand)} only in candidate, "
                   f"{len(c.unpaired)} not scored in one run.")
        if c.worse:
            out += ["", "<details><summary>regressed items</summary>", "", "| id | base | cand | excerpt |",
                    "| --- | ---: | ---: | --- |"]
            out += [f"| `{_cell(f.trace_id)}` | {f.base:g} | {f.cand:g} | {_cell(f.excerpt)} |" for f in c.worse[:LISTED]]
            out += ["", "</details>"]
        out.append("")
    return "\n".join(out)


def write_markdown(path: Path, a: Assessment) -> None:
    path.write_text(markdown(a), encoding="utf-8")
