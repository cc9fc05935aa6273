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
from online.copies import Copies, Counts
from online.sampling import u_of

from .cli_runner import invoke
from .processes import base_env

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
    res = invoke(["online", "--schedule", "daily", "--window", "2026-11-22", "--json"], env)
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["skipped"] == {"duplicate": 4}  # every later copy, sampled or not
    assert outcome["seen"] == 4 and outcome["filtered"] == 1  # the traces, not the copies
    assert outcome["sampled"] == {"ok": 2} and outcome["enqueued"] == {"ok": 2}

    ledger = Ledger(env["JUDGEQ_LEDGER_URL"])
    (run_id,) = outcome["runs"].values()
    rows = {s.trace_id: s for s in ledger.scores.scores(run_id)}
    assert set(rows) == {"plain-de", "twice-de"}
    records = {score.trace_id: record for score, record in ledger.scores.judged_items(run_id, "ok")}
    assert records["twice-de"]["output"] == "twice-de at 6"  # the first copy is the one stored and judged
    strata = {c.stratum: (c.seen, c.filtered, c.sampled) for c in ledger.windows.strata(run_id)}
    assert strata == {"en": (1, 0, 0), "de": (3, 1, 2)}
    assert ledger.runs.get_run(run_id).meta["skipped"] == {"duplicate": 4}

    # Judged again (late traces: one more copy of a judged id and of an unjudged one): still nothing new.
    with (tmp_path / "logs.jsonl").open("a") as file:
        file.write(json.dumps(_trace("first-en", 9, "de")) + "\n" + json.dumps(_trace("twice-de", 10, "de")) + "\n")
    again = invoke(["online", "--schedule", "daily", "--window", "2026-11-22", "--json"], env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["skipped"] == {"duplicate": 6} and second["enqueued"] == {"ok": 0}  # nothing new sent
    assert set(s.trace_id for s in ledger.scores.scores(run_id)) == {"plain-de", "twice-de"}


def test_explain_tells_what_the_job_did_with_every_copy(tmp_path: Path) -> None:
    env = _config(tmp_path)
    _write(tmp_path, [_trace("first-en", 2, "en"), _trace("first-en", 3, "de"), _trace("first-en", 4, "de"),
                      _trace("twice-de", 6, "de"), _trace("twice-de", 7, "en")])
    assert invoke(["online", "--schedule", "daily", "--window", "2026-11-22"], env).returncode == 0

    res = invoke(["explain", "first-en", "--window", "2026-11-22", "--schedule", "daily", "--json"], env)
    assert res.returncode == 0, res.stderr
    (answer,) = json.loads(res.stdout)
    assert (answer["outcome"], answer["stratum"], answer["row"], answer["later_copies"]) == ("not_sampled", "en", None, 2)
    text = invoke(["explain", "first-en", "--window", "2026-11-22", "--schedule", "daily"], env)
    assert "not sampled" in text.stdout and "2 later copies skipped as duplicates, never judged" in text.stdout

    judged = json.loads(invoke(["explain", "twice-de", "--window", "2026-11-22", "--schedule", "daily", "--json"],
                               env).stdout)[0]
    assert judged["outcome"] == "sampled" and judged["stratum"] == "de" and judged["later_copies"] == 1
    assert judged["row"] is not None and judged["row"]["status"] == "ok"


def test_copies_count_every_later_copy_by_stratum_and_no_false_one() -> None:
    rng = random.Random(7)
    idents = [f"{rng.getrandbits(64):016x}" for _ in range(200_000)]
    copies = Copies(reach=0.5)
    for n, ident in enumerate(idents):
        copies.note(ident, "en" if n % 2 else "de", filtered=n % 10 == 0)
    counts = copies.counts()
    assert counts.duplicates == 0  # 200,000 distinct ids: none taken for a copy
    assert counts.seen == {"en": 100_000, "de": 100_000} and counts.filtered == {"de": 20_000}
    assert not any(copies.later(hash(i)) for i in idents[:50_000])
    repeats = rng.sample(idents, 5_000)
    for ident in repeats:
        copies.note(ident, "fr", filtered=False)
    copies.note(repeats[0], "de", filtered=True)  # a third copy, filtered
    assert copies.counts() == Counts(seen=counts.seen, filtered=counts.filtered, duplicates=5_001)
    assert all(copies.later(hash(i)) for i in idents[:50_000]) and not copies.later(hash("not-met-before"))


def test_below_a_rate_of_one_only_ids_a_rate_reaches_are_held_and_still_no_copy_is_judged(tmp_path: Path) -> None:
    """Rates 0.1 (en) and 0.6 (de): the set holds ids with u < 0.6 only; the counts still see every copy."""
    toml = _config(tmp_path)["JUDGEQ_CONFIG"]
    text = Path(toml).read_text().replace("rate = 0.0\nrates = { de = 1.0 }", "rate = 0.1\nrates = { de = 0.6 }")
    Path(toml).write_text(text)
    env = base_env(JUDGEQ_CONFIG=toml, JUDGEQ_LEDGER_URL=f"sqlite:///{tmp_path / 'l.db'}")
    ids = [f"id-{n}" for n in range(400)]
    between = [i for i in ids if 0.1 <= u_of("judgeq", i) < 0.6][:3]  # not sampled in en, sampled in de
    high = [i for i in ids if u_of("judgeq", i) >= 0.6][:2]  # sampled nowhere: not held, yet counted
    low = [i for i in ids if u_of("judgeq", i) < 0.1][:1]  # sampled in both
    traces = [_trace(between[0], 1, "en"), _trace(between[0], 2, "de"),
              _trace(between[1], 3, "de", tenant="internal"), _trace(between[1], 4, "de"),
              _trace(between[2], 5, "de"), _trace(between[2], 6, "en"),
              _trace(high[0], 7, "en"), _trace(high[0], 8, "de"), _trace(high[1], 9, "de", tenant="internal"),
              _trace(high[1], 10, "de", tenant="internal"), _trace(low[0], 11, "en"), _trace(low[0], 12, "de")]
    _write(tmp_path, traces)
    res = invoke(["online", "--schedule", "daily", "--window", "2026-11-22", "--json"], env)
    assert res.returncode == 0, res.stderr
    outcome = json.loads(res.stdout)
    assert outcome["skipped"] == {"duplicate": 6} and outcome["seen"] == 6 and outcome["filtered"] == 2
    (run_id,) = outcome["runs"].values()
    ledger = Ledger(env["JUDGEQ_LEDGER_URL"])
    assert {s.trace_id: s.stratum for s in ledger.scores.scores(run_id)} == {between[2]: "de", low[0]: "en"}
    strata = {c.stratum: (c.seen, c.filtered, c.sampled) for c in ledger.windows.strata(run_id)}
    assert strata == {"en": (3, 0, 1), "de": (3, 2, 1)}
