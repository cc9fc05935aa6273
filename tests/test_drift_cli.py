"""``judgeq drift`` end to end, on SQLite and PostgreSQL: windows judged through the online path, then checked.

The story: seven hourly windows of a JSONL source, three locales (en sampled
at a half, fr and de in full), judged in this process by the window job
(what ``judgeq online`` runs without a broker). In the last hour fr's pass
rate falls from 0.9 to 0.3. ``judgeq drift --short 1h --long 6h --by locale``
at the end of that hour alerts on fr (exit 1), passes en and calls de (20
traces an hour) too small; an hour earlier nothing has changed (exit 0);
before any window there is no data (exit 0). Every check lands in
``drift_checks``; bad flags exit 2 and write nothing; an alert reaches a
webhook served by the test, and an unreachable one costs only a warning.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledger.store import Ledger
from online.plan import prepare, schedule_for
from online.windows import parse_window, window_at, parse_size
from workers.dispatch import EmbeddedDispatcher
from runs.sending import ChunkSettings
from workers.settings import WorkerSettings

from .cli_runner import invoke
from .processes import base_env, free_port

pytestmark = pytest.mark.timeout(300)  # several CLI processes a test; slow on a loaded machine

FIRST = parse_window("2026-11-20T00")
HOURS = 7
LAST = "2026-11-20T06"
AT = "2026-11-20T07:00Z"

CONFIG = """
[sources.live]
type = "jsonl"
path = "traces.jsonl"

[online.hourly]
source = "live"
judges = ["exact"]
window = "1h"
lateness = "0s"

[online.hourly.sampling]
strata = "metadata.locale"
rate = 1.0
rates = { en = 0.5 }
"""

#: locale -> (traces an hour, session size, passes of 10 before, passes of 10 in the dropped hour)
LOCALES = {"en": (200, 2, 8, 8), "fr": (60, 3, 9, 3), "de": (20, 2, 8, 8)}


def traces(start: datetime, hours: int, dropped: int, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``hours`` hours from ``start``; hour ``dropped`` (an index) has each locale's dropped pass rate.

    ``names`` renames locales in the written metadata (a hostile label, say)."""
    out = []
    for h in range(hours):
        for locale, (n, session, before, after) in LOCALES.items():
            passes = after if h == dropped else before
            for i in range(n):
                ts = start + timedelta(hours=h, seconds=(i * 3600) // n)
                out.append({"id": f"{locale}-{h}-{i}", "input": "q", "output": "yes" if i % 10 < passes else "no",
                            "expected": "yes", "ts": ts.isoformat(),
                            "metadata": {"locale": (names or {}).get(locale, locale), "session_id": f"{locale}-{h}-s{i // session}",
                                         "tenant": "a" if i % 2 else "b"}})
    return out


def fill(folder: Path, ledger_url: str, start: datetime, hours: int, dropped: int,
         names: dict[str, str] | None = None) -> None:
    """Write the traces and judge every hour through the window job, as `judgeq online` does without a broker."""
    (folder / "judgeq.toml").write_text(CONFIG + f"\n[judges.exact]\ntype = \"local\"\nbuiltin = \"exact_match\"\n")
    with (folder / "traces.jsonl").open("w") as f:
        for record in traces(start, hours, dropped, names):
            f.write(json.dumps(record) + "\n")
    config = folder / "judgeq.toml"
    plan = prepare(config, schedule_for(config, schedule="hourly"))
    from online.job import WindowJob

    with Ledger(ledger_url) as ledger:
        for h in range(hours):
            window = window_at(parse_size("1h"), start + timedelta(hours=h))
            dispatcher = EmbeddedDispatcher(ledger, WorkerSettings())
            WindowJob(plan.schedule, window, plan.source, plan.judges, ledger, ChunkSettings()).run(dispatcher)
            dispatcher.join()


def drift(env: dict[str, str], *args: str) -> Any:
    return invoke(["drift", "--schedule", "hourly", "--judge", "exact", *args], env)


def checks(ledger_url: str) -> list[Any]:
    with Ledger(ledger_url) as ledger:
        return ledger.drift.checks("hourly", "exact")


class Hook:
    """A webhook receiver on 127.0.0.1: keeps each POSTed JSON body."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append({"type": self.headers.get("Content-Type"), "body": json.loads(self.rfile.read(length))})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def env(tmp_path: Path, ledger_url: str) -> dict[str, str]:
    fill(tmp_path, ledger_url, FIRST.start, HOURS, dropped=HOURS - 1)
    return base_env(JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))


def test_a_drop_in_one_locale_alerts_on_it_alone_and_is_recorded(env: dict[str, str], ledger_url: str,
                                                                  hook: Hook) -> None:
    res = drift(env, "--short", "1h", "--long", "6h", "--by", "metadata.locale", "--at", AT, "--json",
                "--webhook", hook.url)
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "alert" and out["correction"] == "holm" and out["by"] == ["locale"]
    assert out["short_span"]["windows"] == [LAST]
    assert out["long_span"]["windows"] == [f"2026-11-20T0{h}" for h in range(6)]
    status = {s["slice"]: s for s in out["slices"]}
    assert list(status) == ["all", "locale=de", "locale=en", "locale=fr"]
    fr, en, de = status["locale=fr"], status["locale=en"], status["locale=de"]
    assert fr["status"] == "alert" and fr["short"]["mean"] == pytest.approx(0.3)
    assert fr["long"]["mean"] == pytest.approx(0.9) and fr["drop"] == pytest.approx(0.6)
    assert fr["short"]["n"] == 60 and fr["short"]["clusters"] == 20 and fr["adjusted_p"] < 0.05
    assert en["status"] == "ok" and abs(en["drop"]) < 0.05
    assert de["status"] == "too_small" and de["short"]["n"] == 20 and de["p_value"] is None
    # en is sampled at a half: its rows weigh 2, and the overall mean is the weighted one.
    short = out["slices"][0]["short"]
    assert short["n"] == 60 + 20 + en["short"]["n"]
    assert short["mean"] == pytest.approx((0.3 * 60 + 0.8 * 20 + 2 * en["short"]["n"] * en["short"]["mean"])
                                          / (60 + 20 + 2 * en["short"]["n"]))

    (posted,) = hook.bodies
    assert posted["type"] == "application/json"
    assert posted["body"]["text"].startswith("drift of exact on hourly: ALERT")
    assert "locale=fr 0.900 -&gt; 0.300" in posted["body"]["text"]  # escaped for Slack (online/webhook.py)
    assert [s["slice"] for s in posted["body"]["slices"] if s["status"] == "alert"] == [
        s for s in status if status[s]["status"] == "alert"]

    rows = checks(ledger_url)
    assert len({r.check_id for r in rows}) == 1 and len(rows) == 4
    by_slice = {(r.slice_key, r.slice): r for r in rows}
    row = by_slice[("locale", "fr")]
    assert row.status == "alert" and row.via == "cli" and row.short_windows == [LAST]
    assert row.short_n == 60 and row.score_drop == pytest.approx(0.6) and row.adjusted_p == fr["adjusted_p"]
    assert row.short_end == datetime(2026, 11, 20, 7, tzinfo=UTC).replace(tzinfo=row.short_end.tzinfo)
    assert by_slice[("locale", "de")].status == "too_small" and by_slice[("locale", "de")].p_value is None
    assert by_slice[(None, "all")].long_n > 0


#: A slice label as a hostile trace writer sets it: a channel-wide mention, a disguised link, Slack's markup.
HOSTILE = "fr <!channel> <https://evil.example/login|open the dashboard> & @here *now*"


def test_trace_metadata_reaches_slack_as_plain_text(tmp_path: Path, ledger_url: str, hook: Hook) -> None:
    fill(tmp_path, ledger_url, FIRST.start, HOURS, dropped=HOURS - 1, names={"fr": HOSTILE})
    env = base_env(JUDGEQ_LEDGER_URL=ledger_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    res = drift(env, "--short", "1h", "--long", "6h", "--by", "locale", "--at", AT, "--webhook", hook.url)
    assert res.returncode == 1, res.stderr
    (posted,) = hook.bodies
    text = posted["body"]["text"]
    assert "<" not in text and ">" not in text and "<!channel>" not in text and "@here" not in text
    assert ("locale=fr &lt;!channel&gt; &lt;https://evil.example/login|open the dashboard&gt; &amp; "
            "@\u2060here *now* 0.900 -&gt; 0.300") in text
    body = posted["body"]
    assert body["mrkdwn"] is False and body["unfurl_links"] is False and body["parse"] == "none"
    # The figures for other receivers are the check's JSON, labels as they are in the ledger.
    assert f"locale={HOSTILE}" in [s["slice"] for s in body["slices"]]


def test_no_change_passes_and_no_data_says_so(env: dict[str, str], ledger_url: str) -> None:
    res = drift(env, "--by", "locale", "--short", "1h", "--long", "6h", "--at", "2026-11-20T06:00Z")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "no alert" in res.stdout and "locale=fr" in res.stdout and "too small" in res.stdout

    res = drift(env, "--at", "2026-11-10T00:00Z")
    assert res.returncode == 0, res.stderr
    assert "no data" in res.stdout and "ALERT" not in res.stdout
    statuses = sorted(r.status for r in checks(ledger_url))
    assert statuses.count("no_data") == 1 and "alert" not in statuses

    # The schedule's runs are named after it, not after its source: --source finds none, and says where they are.
    res = invoke(["drift", "--source", "live", "--judge", "exact", "--at", AT], env)
    assert res.returncode == 0 and "no data" in res.stdout, res.stderr
    assert "checked with --schedule (hourly)" in res.stderr


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One SQLite ledger for the bad-flag cases (they must leave it as it is, so they can share it)."""
    folder = tmp_path_factory.mktemp("bad-flags")
    url = f"sqlite:///{folder / 'ledger.db'}"
    fill(folder, url, FIRST.start, HOURS, dropped=HOURS - 1)
    return folder, url


@pytest.mark.parametrize(("args", "says"), [
    (["--judge", "nope"], "unknown judge 'nope'"),
    (["--by", "colour"], "no trace in the two spans has metadata key 'colour'"),
    (["--short", "2h", "--long", "1h"], "shorter than the short window"),
    (["--short", "30m"], "windows of 1h, longer than --short 30m"),
    (["--min-drop", "1.5"], "--min-drop: 1.5 is not a score drop"),
    (["--at", "yesterday"], "--at 'yesterday' is not a time"),
    (["--webhook", "ftp://example.org/x"], "--webhook: not an http(s) URL"),
])
def test_bad_flags_exit_2_and_record_nothing(filled: tuple[Path, str], args: list[str], says: str) -> None:
    folder, url = filled
    env = base_env(JUDGEQ_LEDGER_URL=url, JUDGEQ_CONFIG=str(folder / "judgeq.toml"))
    res = invoke(["drift", "--schedule", "hourly", "--judge", "exact", "--at", AT, *args], env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert says in res.stderr and "Traceback" not in res.stderr
    assert checks(url) == []


def test_an_unreachable_webhook_warns_and_the_alert_stands(env: dict[str, str], ledger_url: str) -> None:
    res = drift(env, "--by", "locale", "--short", "1h", "--long", "6h", "--at", AT, "--webhook",
                f"http://127.0.0.1:{free_port()}/hook")
    assert res.returncode == 1, res.stderr
    assert "ALERT" in res.stdout and "locale=fr" in res.stdout
    assert "warning: webhook at 127.0.0.1 unreachable" in res.stderr and "/hook" not in res.stderr
    assert any(r.status == "alert" for r in checks(ledger_url))


# -- the trend picture ---------------------------------------------------------------------------------------


def test_the_trend_picture_has_a_panel_per_slice_and_marks_the_drift(tmp_path: Path) -> None:
    from online.drift_check import DriftQuery, check, record
    from cli.views.trend_plot import plot_trend

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    fill(tmp_path, url, FIRST.start, HOURS, dropped=HOURS - 1)
    at = datetime(2026, 11, 20, 7, tzinfo=UTC)
    with Ledger(url) as ledger:
        for when in (at - timedelta(hours=1), at):  # an hour without change, then the drop
            record(ledger, check(ledger, DriftQuery("hourly", "exact", timedelta(hours=1), timedelta(hours=6),
                                                    when, by=("locale",))), "cli")
        runs = ledger.windows.online_runs("hourly", "exact", [f"2026-11-20T0{h}" for h in range(HOURS)])
        drawn = plot_trend(ledger, runs, source="hourly", judge="exact", title="t", path=tmp_path / "direct.png")
    assert drawn.panels == ["all", "de", "en", "fr"]
    assert drawn.marked == {"all": [LAST], "fr": [LAST]}
    assert (tmp_path / "direct.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    env = base_env(JUDGEQ_LEDGER_URL=url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"))
    args = ["report", "--schedule", "hourly", "--judge", "exact", "--windows", f"2026-11-20T00..{LAST}", "--plot"]
    res = invoke([*args, str(tmp_path / "trend.png")], env)
    assert res.returncode == 0, res.stderr
    assert "2026-11-20T06" in res.stdout  # the table is still printed
    assert "4 panels, drift alerts marked in 1 windows" in res.stderr
    picture = (tmp_path / "trend.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000

    # Without matplotlib (the plot extra), --plot is a usage error that says what to install; no file.
    import subprocess

    from .processes import REPO

    blocked = "import sys; sys.modules['matplotlib'] = None; from cli.main import main; main()"
    res = subprocess.run([*judgeq_python(), "-c", blocked, *args, str(tmp_path / "none.png")], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "pip install 'judgeq[plot]'" in res.stderr, res.stderr
    assert not (tmp_path / "none.png").exists() and res.stdout == ""


def judgeq_python() -> list[str]:
    import sys

    return [sys.executable]
