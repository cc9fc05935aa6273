"""A trace id a window holds more than once: its first copy is the trace, every later copy a counted duplicate.

Issue 17 item 9: a later copy was judged under the id when the first copy
was not sampled (it sat in a stratum of a lower rate, or a ``where`` filter
left it out), it was not counted as a duplicate, it counted in ``seen``
twice, and ``judgeq explain`` (which looks at the first copy) said "not
sampled" of a trace that had a row. Each test here failed on that code.
The window is judged by the real CLI (``judgeq online``) on a SQLite
ledger with a local judge, and explained by ``judgeq explain``.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from online.copies import FirstCopies

from .processes import base_env, run_cli

pytestmark = pytest.mark.timeout(120)

DAY = datetime(2026, 11, 22, tzinfo=UTC)


def _config(folder: Path) -> dict[str, str]:
    """Locale strata: ``en`` at rate 0 (nothing judged), ``de`` at 1 (all); tenant ``internal`` filtered out."""
    (folder / "judgeq.toml").write_text(
        '[judges.ok]\ntype = "local"\nbuiltin = "noop"\n\n'
        '[sources.logs]\ntype = "jsonl"\npath = "logs.jsonl"\n\n'
        '[online.daily]\nsource = "logs"\njudges = ["ok"]\nwindow = "1d"\n\n'
        '[online.daily.sampling]\nstrata = "metadata.locale"\nrate = 0.0\nrates = { de = 1.0 }\n'
        'where = { "metadata.tenant" = { not_in = ["internal"] } }\n')
    return base_env(JUDGEQ_CONFIG=str(folder / "judgeq.toml"), JUDGEQ_LEDGER_URL=f"sqlite:///{folder / 'l.db'}")


def _trace(ident: str, minute: int, locale: str, tenant: str = "acme") -> dict[str, Any]:
    return {"id": ident, "input": "q", "output": f"{ident} at {minute}", "ts": (DAY + timedelta(minutes=minute)).isoformat(),
            "metadata": {"locale": locale, "tenant": tenant}}


def _write(folder: Path, traces: list[dict[str, Any]]) -> None:
    (folder / "logs.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))


def test_a_later_copy_is_never_judged_whatever_became_of_the_first(tmp_path: Path) -> None:
    env = _config(tmp_path)
    _write(tmp_path, [
        _trace("plain-de", 1, "de"),           # judged (rate 1)
        _trace("first-en", 2, "en"),           # not sampled (rate 0) ...
        _trace("first-en", 3, "de"),           # ... so its copy in the stratum of rate 1 must not be judged
        _trace("first-filtered", 4, "de", tenant="internal"),  # filtered out ...
        _trace("first-filtered", 5, "de"),                     # ... and its copy that passes is a duplicate
        _trace("twice-de", 6, "de"),           # judged once; its identical copy is a duplicate
        _trace("twice-de", 7, "de"),
        _trace("twice-de", 8, "de"),
    ])
    res = run_cli(["online", "--schedule", "daily", "--window", "2026-11-22", "--json"], env)
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["skipped"] == {"duplicate": 4}  # every later copy, sampled or not
    assert outcome["seen"] == 4 and outcome["filtered"] == 1  # the traces, not the copies
    assert outcome["sampled"] == {"ok": 2} and outcome["enqueued"] == {"ok": 2}

    ledger = Ledger(env["JUDGEQ_LEDGER_URL"])
    (run_id,) = outcome["runs"].values()
    rows = {s.trace_id: s for s in ledger.scores(run_id)}
    assert set(rows) == {"plain-de", "twice-de"}
    records = {score.trace_id: record for score, record in ledger.judged_items(run_id, "ok")}
    assert records["twice-de"]["output"] == "twice-de at 6"  # the first copy is the one stored and judged
    strata = {c.stratum: (c.seen, c.filtered, c.sampled) for c in ledger.strata(run_id)}
    assert strata == {"en": (1, 0, 0), "de": (3, 1, 2)}
    assert ledger.get_run(run_id).meta["skipped"] == {"duplicate": 4}

    # Judged again (late traces: one more copy of a judged id and of an unjudged one): still nothing new.
    with (tmp_path / "logs.jsonl").open("a") as file:
        file.write(json.dumps(_trace("first-en", 9, "de")) + "\n" + json.dumps(_trace("twice-de", 10, "de")) + "\n")
    again = run_cli(["online", "--schedule", "daily", "--window", "2026-11-22", "--json"], env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["skipped"] == {"duplicate": 6} and second["enqueued"] == {"ok": 0}  # nothing new sent
    assert set(s.trace_id for s in ledger.scores(run_id)) == {"plain-de", "twice-de"}


def test_explain_tells_what_the_job_did_with_every_copy(tmp_path: Path) -> None:
    env = _config(tmp_path)
    _write(tmp_path, [_trace("first-en", 2, "en"), _trace("first-en", 3, "de"), _trace("first-en", 4, "de"),
                      _trace("twice-de", 6, "de"), _trace("twice-de", 7, "en")])
    assert run_cli(["online", "--schedule", "daily", "--window", "2026-11-22"], env).returncode == 0

    res = run_cli(["explain", "first-en", "--window", "2026-11-22", "--schedule", "daily", "--json"], env)
    assert res.returncode == 0, res.stderr
    (answer,) = json.loads(res.stdout)
    assert (answer["outcome"], answer["stratum"], answer["row"], answer["later_copies"]) == ("not_sampled", "en", None, 2)
    text = run_cli(["explain", "first-en", "--window", "2026-11-22", "--schedule", "daily"], env)
    assert "not sampled" in text.stdout and "2 later copies skipped as duplicates, never judged" in text.stdout

    judged = json.loads(run_cli(["explain", "twice-de", "--window", "2026-11-22", "--schedule", "daily", "--json"],
                                env).stdout)[0]
    assert judged["outcome"] == "sampled" and judged["stratum"] == "de" and judged["later_copies"] == 1
    assert judged["row"] is not None and judged["row"]["status"] == "ok"


def test_first_copies_finds_every_repeat_and_no_false_one() -> None:
    rng = random.Random(7)
    idents = [f"{rng.getrandbits(64):016x}" for _ in range(200_000)]
    copies = FirstCopies()
    assert not any(copies.again(i) for i in idents)  # 200,000 distinct ids: none taken for a repeat
    assert copies.met == len(idents)
    repeats = rng.sample(idents, 5_000)
    assert all(copies.again(i) for i in repeats) and copies.met == len(idents)
    assert not copies.again("not-met-before") and copies.again("not-met-before")
