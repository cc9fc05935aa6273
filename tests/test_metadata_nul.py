"""A NUL in a record's metadata (or output) is a value like any other, on both backends, end to end.

PostgreSQL's JSON operators fail on a document holding ``\\u0000``; the ledger
stores records with NUL escaped (``ledger.text``), so slices by a key whose
value holds a NUL work and stay apart from their look-alikes: ``report --by``,
``compare --by`` (with the excerpt of an output holding a NUL), ``drift
--by`` over online windows read from a JSONL source, and the exporter's
per-slice means, whose snapshot stays up. Migration 0010 rewrites the records
an older judgeq stored as they came.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.store import Ledger
from online.plan import prepare, schedule_for
from online.windows import parse_size, window_at
from workers.dispatch import EmbeddedDispatcher
from runs.sending import ChunkSettings
from workers.settings import WorkerSettings

from .cli_runner import invoke
from .processes import base_env
from .test_drift_cli import AT, CONFIG, FIRST, HOURS
from .test_exporter import config_file, scrape

pytestmark = pytest.mark.timeout(240)

#: A NUL; the same text without it; the escaped spelling of a NUL, as text; and a plain value.
LOCALES = ("a\x00b", "ab", "a\u24000b", "de")


def _records(wrong: set[int]) -> list[dict[str, Any]]:
    return [{"id": f"q{i:02d}", "input": f"question {i}", "expected": "yes",
             "output": ("no\x00 way" if i == 0 else "no") if i in wrong else "yes",
             "metadata": {"locale": LOCALES[i % 4], "session_id": f"s{i}"}} for i in range(40)]


def _submit(env: dict[str, str], path: Path, records: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    res = invoke(["submit", str(path), "--judge", "exact", "--wait", "--json"], env)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["run"]["id"])


def test_report_compare_and_exporter_slice_by_a_value_holding_a_nul(tmp_path: Path, ledger_url: str) -> None:
    env = base_env(JUDGEQ_LEDGER_URL=ledger_url)
    (tmp_path / "base").mkdir()
    (tmp_path / "cand").mkdir()
    base = _submit(env, tmp_path / "base" / "golden.jsonl", _records(set()))
    cand = _submit(env, tmp_path / "cand" / "golden.jsonl", _records({0, 1, 2}))

    res = invoke(["report", cand, "--by", "locale", "--json"], env)
    assert res.returncode == 0, res.stderr
    cards = {c["slice"]: c for c in json.loads(res.stdout)["scorecard"]}
    assert set(cards) == {None, *LOCALES}
    assert cards["a\x00b"]["ok"] == 10 and cards["a\x00b"]["mean"] == pytest.approx(0.9)
    assert cards["ab"]["mean"] == pytest.approx(0.9) and cards["de"]["mean"] == pytest.approx(1.0)
    table = invoke(["report", cand, "--by", "locale"], env)
    assert table.returncode == 0 and "a\u24000b" in table.stdout, table.stderr

    res = invoke(["compare", base, cand, "--by", "locale", "--json"], env)
    assert res.returncode == 0, res.stderr
    (judge,) = json.loads(res.stdout)["judges"]
    assert {s["slice"] for s in judge["slices"]} == set(LOCALES)
    worse = {f["id"]: f["excerpt"] for f in judge["worse"]}
    assert worse == {"q00": "no\x00 way", "q01": "no", "q02": "no"}

    with Ledger(ledger_url) as ledger:
        got = scrape(ledger, config_file(tmp_path, '[exporter]\nslices = ["metadata.locale"]\n'))
    assert got[("judgeq_ledger_up", ())] == 1
    series = {dict(labels)["locale"] for (name, labels), _ in got.items() if name == "app_eval_exact"}
    assert set(LOCALES) <= series


def _fill_windows(folder: Path, ledger_url: str) -> None:
    """HOURS hourly windows of traces from a JSONL source, a quarter of them with a NUL in their locale."""
    (folder / "judgeq.toml").write_text(CONFIG + '\n[judges.exact]\ntype = "local"\nbuiltin = "exact_match"\n')
    with (folder / "traces.jsonl").open("w") as f:
        for h in range(HOURS):
            for i in range(80):
                ts = FIRST.start + timedelta(hours=h, seconds=i * 40)
                f.write(json.dumps({"id": f"t{h}-{i}", "input": "q", "expected": "yes", "ts": ts.isoformat(),
                                    "output": "yes" if i % 10 else "no",
                                    "metadata": {"locale": LOCALES[i % 4], "session_id": f"s{h}-{i}"}}) + "\n")
    config = folder / "judgeq.toml"
    plan = prepare(config, schedule_for(config, schedule="hourly"))
    from online.job import WindowJob

    with Ledger(ledger_url) as ledger:
        for h in range(HOURS):
            dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())
            WindowJob(plan.schedule, window_at(parse_size("1h"), FIRST.start + timedelta(hours=h)), plan.source,
                      plan.judges, ledger, ChunkSettings()).run(dispatcher)
            dispatcher.join()


def test_drift_slices_online_windows_by_a_value_holding_a_nul(tmp_path: Path, ledger_url: str) -> None:
    _fill_windows(tmp_path, ledger_url)
    env = base_env(JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    res = invoke(["drift", "--schedule", "hourly", "--judge", "exact", "--short", "1h", "--long", "6h",
                   "--by", "locale", "--at", AT, "--json"], env)
    assert res.returncode == 0, res.stderr
    slices = {s["slice"]: s for s in json.loads(res.stdout)["slices"]}
    assert set(slices) == {"all", *(f"locale={v}" for v in LOCALES)}
    assert slices["locale=a\x00b"]["short"]["n"] == 20 and slices["locale=ab"]["short"]["n"] == 20


def test_migration_0011_escapes_the_records_an_older_ledger_stored(empty_ledger_url: str) -> None:
    from alembic import command

    from ledger.engine import create_ledger_engine
    from ledger.migrate import alembic_config, upgrade
    from ledger.models import ITEMS, RUNS, SCORES

    engine = create_ledger_engine(empty_ledger_url)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")
        conn.commit()
    records = [{"id": f"t{i}", "output": "o\x00" if i == 0 else "o", "metadata": {"locale": locale}}
               for i, locale in enumerate(LOCALES)]
    with engine.begin() as conn:  # as judgeq up to 0010 wrote them: the record as it came
        conn.execute(sa.insert(RUNS), [{"id": "old", "kind": "offline", "dataset_name": "d", "judges": {},
                                        "n_items": 4, "expected": 4, "status": "done", "tags": [], "meta": {}}])
        conn.execute(sa.insert(ITEMS), [{"run_id": "old", "trace_id": r["id"], "seq": i, "content_hash": "h",
                                         "record": r} for i, r in enumerate(records)])
        conn.execute(sa.insert(SCORES), [{"run_id": "old", "trace_id": r["id"], "eval": "exact", "score": 1.0,
                                          "judge_version": "exact@0", "dataset": "d", "status": "ok",
                                          "reason": "", "weight": 1.0} for r in records])
    upgrade(engine)
    engine.dispose()
    ledger = Ledger(empty_ledger_url)
    rows = ledger.scores.score_rows("old", by="locale")["exact"]
    assert sorted(v or "" for v in rows.by or []) == sorted(LOCALES)
    assert [record for _, record in ledger.scores.judged_items("old", "exact")] == records
    with ledger.engine.connect() as conn:  # stored escaped: the database's JSON operators read every record
        stored = conn.execute(sa.select(ITEMS.c.record["metadata"]).order_by(ITEMS.c.seq)).scalars().all()
    assert [m["locale"] for m in stored] == ["a\u24000b", "ab", "a\u2400\u24000b", "de"]
    ledger.close()
    with create_ledger_engine(empty_ledger_url).connect() as conn:  # and back down: the records as they came
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        conn.commit()
        assert conn.execute(sa.select(ITEMS.c.record).order_by(ITEMS.c.seq)).scalars().all() == records
