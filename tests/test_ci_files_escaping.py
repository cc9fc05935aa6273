"""--junit and --markdown with hostile model outputs and ids: each file stays well-formed and inert.

End to end: a baseline run where every item passes, a candidate whose outputs are attacks on the
two formats (markup, links, images, backticks, control bytes), gated against the baseline; then
the JUnit file is parsed as XML and the Markdown is checked for anything a renderer would act on.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scheduler.formats import md_text, xml_text

from .cli_runner import invoke
from .processes import base_env

pytestmark = pytest.mark.timeout(120)

ATTACKS = {
    "img": '<img src=x onerror="alert(1)">',
    "details": "</details><script>alert(document.cookie)</script>",
    "link": "[click me](javascript:alert(1))",
    "image": "![pixel](https://evil.example/pixel.png?user=ci)",
    "ticks": "``` `break` out of `code`",
    "controls": "bell\u0007 esc\u001b[2J nul\u0000 del\u007f vt\u000b",
    "bidi": "invoice\u202egnp.exe",
    "cell": "a | b\nnew line | c",
}
# Ids cannot hold control characters (submit refuses them, exit 2); a bidi override is printable text.
HOSTILE_IDS = ["<b>id</b>", "back`tick|pipe", "rtl\u202etxt.exe"]


def write(path: Path, records: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_hostile_outputs_and_ids_stay_inert(tmp_path: Path) -> None:
    ids = list(ATTACKS) + HOSTILE_IDS
    outputs = list(ATTACKS.values()) + [ATTACKS["img"]] * len(HOSTILE_IDS)
    base = write(tmp_path / "base" / "golden.jsonl", [{"id": i, "output": "right", "expected": "right"} for i in ids])
    cand = write(tmp_path / "cand" / "golden.jsonl",
                 [{"id": i, "output": o, "expected": "right"} for i, o in zip(ids, outputs)])
    env = base_env(JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'ledger.db'}")
    first = invoke(["submit", str(base), "--judge", "exact_match", "--wait", "--json"], env)
    assert first.returncode == 0, first.stderr
    base_id = json.loads(first.stdout)["run"]["id"]
    assert invoke(["status", base_id], env).returncode == 0  # marks the finished run done
    junit, md = tmp_path / "gate.xml", tmp_path / "summary.md"
    res = invoke(["submit", str(cand), "--judge", "exact_match", "--wait", "--baseline", base_id,
                  "--gate", "exact_match>=0.9", "--junit", str(junit), "--markdown", str(md)], env)
    assert res.returncode == 1, res.stderr  # the gates fail: every item regressed

    root = ET.parse(junit).getroot()  # raised "not well-formed" on control characters before
    failures = root.findall(".//failure")
    assert len(failures) == 2
    listed = "\n".join(f.text or "" for f in failures)
    assert "rtl\u202etxt.exe" in listed and "<b>id</b>" in listed  # ids kept (XML holds them), not dropped

    text = md.read_text(encoding="utf-8")
    ours = ("<details><summary>regressed items</summary>", "</details>")
    stripped = text
    for tag in ours:
        stripped = stripped.replace(tag, "")
    assert "<" not in stripped and ">" not in stripped  # no tag of the data's: no img, script, </details>
    assert text.count("<details>") == text.count("</details>") == 1
    assert not re.search(r"(?<!\\)\]\(", text)  # no link or image: every "](" is escaped
    assert "](javascript" not in text and "https://evil" not in text  # no link, nothing to autolink
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e]", text)  # no control or bidi character
    # The excerpts are all there, as text: one table row per regressed item, none split into more cells.
    rows = [line for line in text.splitlines() if line.startswith("| ") and " | 1 | 0 | " in line]
    assert len(rows) == len(ids)
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 5 for row in rows)
    assert "\\`\\`\\` \\`break\\`" in text


def test_the_escapes_themselves() -> None:
    assert xml_text("ok\tline\nnul\x00 bom\ufeff half\ud800 end\uffff") == \
        "ok\tline\nnul\\x00 bom\ufeff half\\ud800 end\\uffff"
    assert md_text("a <b> & [x](y) `c` | d\ne") == "a &lt;b&gt; &amp; \\[x\\]\\(y\\) \\`c\\` \\| d e"
    assert md_text("0.85 www.x.com user@host") == "0\\.85 www\\.x\\.com user\\@host"
