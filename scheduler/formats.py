r"""Files for CI systems: JUnit XML (one test case per gate) and a Markdown job summary.

Both carry text judgeq does not control: item ids, record outputs (excerpts),
metadata slices, dataset and judge names. Each format escapes it its own way:

- JUnit: ElementTree escapes markup, but XML 1.0 cannot hold most control
  characters, lone surrogates or U+FFFE/U+FFFF at all, and a reader rejects
  the whole file for one of them; :func:`xml_text` writes them as visible
  ``\xNN`` / ``\uNNNN`` escapes.
- Markdown (rendered as HTML by CI pages): :func:`md_text` writes ``<``,
  ``>`` and ``&`` as entities (no tag, ``</details>`` included, can open or
  close), backslash-escapes the punctuation that makes links, images, code
  spans, emphasis, math and table cells (so ``[x](javascript:…)`` and
  ``![](https://…)`` stay text and ``https://`` is not autolinked), and turns
  line breaks, control and bidirectional-override characters into visible
  escapes or spaces.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .assess import Assessment

LISTED = 50  # regressed items listed per failure, and flips per judge in Markdown

#: What XML 1.0 cannot hold (its Char production), besides tab, line feed and carriage return.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Control characters, and the invisible ones that reorder or hide text (bidi overrides, zero widths).
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
#: Markdown punctuation that can start a link, image, code span, emphasis, math, heading or a new table cell;
#: ':', '.' and '@' so that nothing is autolinked (https:, www., mail addresses).
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()!|~#$:.@+-])")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_text(text: str) -> str:
    r"""``text`` fit for XML 1.0: characters it cannot hold written as ``\xNN`` / ``\uNNNN``."""
    return _NOT_XML.sub(lambda m: _visible(m.group()), text)


def md_text(text: str) -> str:
    """``text`` as inert Markdown on one line: no tag, link, image, code span or cell break it could make."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    text = _HIDDEN.sub(lambda m: _visible(m.group()), text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCT.sub(r"\\\1", text)


def junit(a: Assessment) -> ET.ElementTree:
    """The JUnit XML of an assessment: a suite for the run, a case per gate, failures listing regressions."""
    x = xml_text
    failures = sum(1 for r in a.results if not r.passed)
    suites = ET.Element("testsuites", name="judgeq", tests=str(len(a.results)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=x(f"judgeq.{a.run.dataset_name}"), tests=str(len(a.results)),
                          failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for key, value in [("run", a.run.id), ("dataset", a.run.dataset_name),
                       ("baseline", a.baseline.id if a.baseline else ""), ("gate_on", a.options.gate_on)]:
        ET.SubElement(props, "property", name=key, value=x(value))
    for result in a.results:
        kind = "absolute" if hasattr(result.gate, "op") else "baseline"
        case = ET.SubElement(suite, "testcase", classname=x(f"judgeq.{kind}.{result.gate.judge}"),
                             name=x(str(result.gate)), time="0")
        if result.passed:
            ET.SubElement(case, "system-out").text = x(result.detail)
            continue
        failure = ET.SubElement(case, "failure", message=x(result.detail), type=f"{kind}-gate")
        lines = [result.detail]
        if result.regressed:
            lines.append(f"regressed items ({len(result.regressed)}):")
            lines += [f"  {item}" for item in result.regressed[:LISTED]]
            if len(result.regressed) > LISTED:
                lines.append(f"  … {len(result.regressed) - LISTED} more (judgeq compare)")
        failure.text = x("\n".join(lines))
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, a: Assessment) -> None:
    junit(a).write(path, encoding="utf-8", xml_declaration=True)


def _f(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")


def _id(text: str) -> str:
    """An id in a code span when it is plain, else as escaped text (a code span cannot escape a backtick)."""
    return f"`{text}`" if _PLAIN_ID.fullmatch(text) else md_text(text)


def markdown(a: Assessment) -> str:
    """A summary fit for a CI job summary page (GitHub's $GITHUB_STEP_SUMMARY and the like)."""
    m = md_text
    verdict = "no gates" if not a.results else ("✅ passed" if a.passed else "❌ FAILED")
    out = [f"## judgeq · {m(a.run.dataset_name)} · {verdict}", "",
           f"Run {_id(a.run.id)} ({m(a.run.status)})" + (f", baseline {_id(a.baseline.id)}" if a.baseline else "")
           + ".", ""]
    if a.results:
        out += ["| gate | result | detail |", "| --- | --- | --- |"]
        out += [f"| {m(str(r.gate))} | {'✅' if r.passed else '❌'} | {m(r.detail)} |" for r in a.results]
        out.append("")
    if a.cards:
        out += ["| judge | slice | items | mean | 95% CI | errors | skipped | cost $ | p50 s | p95 s |",
                "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
        for c in a.cards:
            est = c.estimate
            ci = f"{_f(est.lo, '.3f')}–{_f(est.hi, '.3f')}" if est else "–"
            out.append(f"| {m(c.eval)} | {m(c.slice or '')}{' (small)' if c.small else ''} | {c.ok} | "
                       f"{_f(est.mean if est else None, '.4f')} | {ci} | {c.errors} | {c.skipped} | "
                       f"{c.cost_usd:.4f} | {_f(c.latency_p50_s, '.3f')} | {_f(c.latency_p95_s, '.3f')} |")
        out.append("")
    for c in a.comparisons:
        est = c.overall.estimate
        out.append(f"**{m(c.eval)}** vs baseline: {c.overall.n} paired items, delta "
                   f"{_f(est.mean if est else None, '+.4f')} (95% CI {_f(est.lo if est else None, '+.3f')} … "
                   f"{_f(est.hi if est else None, '+.3f')}); {len(c.worse)} worse, {len(c.better)} better; "
                   f"{len(c.only_base)} only in baseline, {len(c.only_cand)} only in candidate, "
                   f"{len(c.unpaired)} not scored in one run.")
        if c.worse:
            out += ["", "<details><summary>regressed items</summary>", "", "| id | base | cand | excerpt |",
                    "| --- | ---: | ---: | --- |"]
            out += [f"| {_id(f.trace_id)} | {f.base:g} | {f.cand:g} | {m(f.excerpt)} |" for f in c.worse[:LISTED]]
            out += ["", "</details>"]
        out.append("")
    return "\n".join(out)


def write_markdown(path: Path, a: Assessment) -> None:
    path.write_text(markdown(a), encoding="utf-8")
