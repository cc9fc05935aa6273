"""Flower's Budgets page (``scheduler/flower_pages``), served by the real ``judgeq flower`` process.

A SQLite ledger holds three budgets (global, a judge's, a judge's within a
schedule) and one whose judge's name is markup, an online run's rows with
costs over today's hours (one a cache hit), the rates the controller set with
its decision, and a change whose note is markup. Through httpx: every request
needs Flower's login (401), the page lists each budget with its figures, rates
and chart, a POST without tornado's ``_xsrf`` token (or from another site) is
a 403, a POST with it sets a budget recorded as made by the logged-in user via
flower, bad amounts show the one rule's message and change nothing, and markup
shows as text. Flower's task API for ``judgeq.budget_set`` records the
logged-in user too (the message it queues says so) and refuses another
``who``. In Debian's chromium, headless: the page as a browser renders it,
navbar link, table and chart, and a screenshot (``docs/flower-budgets.png``
is one).
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from ledger import Ledger, Run, ScoreIn
from ledger.budget_rows import DecisionIn

from .processes import base_env, wait_until
from .test_budget_flower import AUTH, CONFIG, Flower

# About 20 s: three Flower starts, a dozen requests, two headless chromium runs.
pytestmark = pytest.mark.timeout(180)

MARKUP = "<script>alert(1)</script>"


@dataclass
class Site:
    """A running ``judgeq flower`` and the ledger it serves."""

    flower: Flower
    ledger: Ledger
    log: Path
    spent: float  # what the seeded rows cost today

    @property
    def base(self) -> str:
        return self.flower.base

    def get(self, path: str = "/budgets", auth: tuple[str, str] | None = AUTH) -> httpx.Response:
        return httpx.get(self.base + path, auth=auth, timeout=10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def seed(ledger: Ledger, now: datetime) -> float:
    """Budgets, a run's rows over today's hours, the controller's rates and decision; what the rows cost."""
    ledger.budgets.set_budget("global", 10.0, who="finance", via="cli")
    ledger.budgets.set_budget("judge:exact", 2.0, who="ana", via="cli", note=f"cap {MARKUP}")
    ledger.budgets.set_budget("schedule:minutely/judge:exact", 1.5, who="ana", via="api")
    ledger.budgets.set_budget(f"judge:{MARKUP}", 1.0, who="ana", via="cli")
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ledger.runs.create_run(Run(id="on-1", kind="online", dataset_name="minutely", window=now.strftime("%Y-%m-%dT%H"),
                          judges={"exact": {"version": "exact@v1", "kind": "local"}}, status="running",
                          n_items=12, expected=12))
    # Twelve rows spread over the day so far, dearer as the day goes on; the last one a cache hit (free).
    elapsed = now - start
    rows = [ScoreIn(run_id="on-1", trace_id=f"t{i}", eval="exact", judge_version="exact@v1", dataset="w",
                    score=1.0, cost_usd=0.0 if i == 11 else 0.01 * (i + 1), cached=i == 11,
                    ts=start + elapsed * (i + 0.5) / 12) for i in range(12)]
    ledger.scores.write_scores(rows)
    day = now.date().isoformat()
    ledger.budgets.set_planned_rates("minutely", "exact", {"all": (0.25, "paced to the budget")}, [
        DecisionIn(day=day, schedule="minutely", judge="exact", stratum="all", rate=0.25, expected_count=400,
                   cost_per_item=0.01, budget_left=1.2, reserved_usd=0.3, reason="paced to the budget",
                   window=now.strftime("%Y-%m-%dT%H:%M"))], set_by="budget")
    return sum(r.cost_usd for r in rows)


@contextlib.contextmanager
def running_site(tmp_path: Path, redis_url: str, sqlite_url: str, **extra: str) -> Iterator[Site]:
    """``judgeq flower`` on a seeded ledger (``extra``: more environment), stopped afterwards."""
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    (tmp_path / "traces.jsonl").write_text("")
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=sqlite_url,
                   JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"), FLOWER_BASIC_AUTH=":".join(AUTH), **extra)
    with Ledger(sqlite_url) as ledger:
        spent = seed(ledger, datetime.now(UTC))
        running = Site(Flower(env, tmp_path / "flower.log"), ledger, tmp_path / "flower.log", spent)
        try:
            wait_until(running.flower.up, 60, lambda: f"Flower's healthcheck; {running.logs()}")
            yield running
        finally:
            running.flower.stop()


@pytest.fixture
def site(tmp_path: Path, redis_url: str, sqlite_url: str) -> Iterator[Site]:
    with running_site(tmp_path, redis_url, sqlite_url) as running:
        yield running


def xsrf_of(page: str) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def test_every_request_needs_the_login(site: Site) -> None:
    assert site.get(auth=None).status_code == 401
    assert site.get(auth=None).headers["WWW-Authenticate"] == 'Basic realm="flower"'  # the browser asks
    assert site.get(auth=("ops", "wrong-password-here")).status_code == 401
    assert site.get(auth=("nobody", AUTH[1])).status_code == 401
    posted = httpx.post(site.base + "/budgets", data={"scope": "global", "usd_per_day": "1", "action": "set"},
                        timeout=10)
    assert posted.status_code == 401
    assert len(site.ledger.budgets.history()) == 4


def test_the_page_shows_each_budget_its_day_rates_and_history(site: Site) -> None:
    resp = site.get()
    assert resp.status_code == 200, site.logs()
    text = resp.text
    # Flower's own page around it, with the link in Flower's navbar, marked as the page shown.
    assert "<title>Budgets · Flower</title>" in text and 'href="/tasks"' in text
    assert re.search(r'class="nav-link active"\s+href="/budgets"\s+aria-current="page">Budgets</a>', text)
    rows = dict(re.findall(r'<tr data-scope="([^"]+)">(.*?)</tr>', text, re.S))
    assert list(rows) == ["global", "judge:&lt;script&gt;alert(1)&lt;/script&gt;", "judge:exact",
                          "schedule:minutely/judge:exact"]

    def cells(scope: str) -> list[str]:
        return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[scope], re.S)]

    spent = f"{site.spent:.2f}"
    assert cells("judge:exact")[:4] == ["judge:exact", "2.00", spent, "0.00"]
    assert cells("global")[:3] == ["global", "10.00", spent]
    assert cells("schedule:minutely/judge:exact")[:3] == ["schedule:minutely/judge:exact", "1.50", spent]
    assert cells("judge:exact")[6] == "8%"  # one cache hit among twelve verdicts
    assert cells("judge:exact")[7].startswith("ana, ")
    # Each budget's chart: one bar per hour so far, the running total, the budget line; the rates with their source.
    charts = re.findall(r'<svg class="bq-chart".*?</svg>', text, re.S)
    assert len(charts) == 4
    now = datetime.now(UTC)
    hours = math.ceil((now - now.replace(hour=0, minute=0, second=0, microsecond=0)) / timedelta(hours=1))
    assert abs(charts[2].count('<rect class="bq-bar"') - hours) <= 1
    assert 'class="bq-spent"' in charts[2] and "budget $2.00" in charts[2]
    assert re.search(r"<td>minutely</td><td>exact</td><td>all</td><td[^>]*>0\.25</td>\s*<td>budget</td>"
                     r"<td>paced to the budget</td>", text)
    # The history: changes (who, via, note), then the controller's decisions apart.
    changes = re.search(r'<table id="changes".*?</table>', text, re.S)
    decisions = re.search(r'<table id="decisions".*?</table>', text, re.S)
    assert changes and decisions
    assert "none → 2.00" in changes.group(0) and "<td>api</td>" in changes.group(0)
    assert "paced to the budget" in decisions.group(0) and "paced" not in changes.group(0)
    # Markup in a judge's name and in a note is text.
    assert MARKUP not in text and "cap &lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_the_form_sets_changes_and_removes_budgets_as_the_logged_in_user(site: Site) -> None:
    with httpx.Client(base_url=site.base, auth=AUTH, timeout=10, follow_redirects=True) as client:
        page = client.get("/budgets")
        assert "_xsrf" in client.cookies
        token = xsrf_of(page.text)
        form = {"scope": "judge", "judge": "exact", "schedule": "", "usd_per_day": "3.25", "action": "set",
                "note": f"more traffic {MARKUP}"}

        # Without the token, or with one not of this session, or from another site: refused, nothing changes.
        assert client.post("/budgets", data=form).status_code == 403
        assert client.post("/budgets", data={**form, "_xsrf": "2|00|11|22"}).status_code == 403
        cross = client.post("/budgets", data={**form, "_xsrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403
        assert len(site.ledger.budgets.history()) == 4 and site.ledger.budgets.budgets()["judge:exact"] == 2.0

        done = client.post("/budgets", data={**form, "_xsrf": token})
        assert done.status_code == 200, site.logs()
        # Post/Redirect/Get: the POST answered 303 to the page showing the change, so a reload sends nothing.
        assert [r.status_code for r in done.history] == [303] and "?change=" in str(done.url)
        assert "budget judge:exact: $2.00/day -&gt; $3.25/day by ops via flower" in done.text
        change = site.ledger.budgets.history()[0]
        assert (change.scope, change.old_usd, change.new_usd, change.who, change.via, change.note) == (
            "judge:exact", 2.0, 3.25, "ops", "flower", f"more traffic {MARKUP}")
        assert site.ledger.budgets.budgets()["judge:exact"] == 3.25
        assert MARKUP not in done.text  # the note, shown in the history, is text

        # Bad values: the CLI's one rule says why, on the page; nothing changes.
        bad = {
            "-5": "USD per day -5 is not a budget (negative)",
            "NaN": "USD per day nan is not a budget (not a finite number)",
            "twenty": "USD per day 'twenty' is not a budget (str, not a number)",
            "1" + "0" * 400: "is not a budget (more than the most a budget may be",
        }
        for amount, says in bad.items():
            refused = client.post("/budgets", data={**form, "usd_per_day": amount, "_xsrf": token})
            assert refused.status_code == 400, amount
            shown = re.search(r'<div id="outcome" class="alert alert-danger"[^>]*>(.*?)</div>', refused.text, re.S)
            assert shown and says in html.unescape(shown.group(1)), (amount, shown and shown.group(1))
            assert f'value="{amount}"' in refused.text  # the form keeps what was typed
        unknown = client.post("/budgets", data={**form, "judge": "nope", "_xsrf": token})
        assert unknown.status_code == 400 and "unknown judge 'nope'" in html.unescape(unknown.text)
        # (tornado turns C0 controls such as ESC into spaces, but not line breaks; nor format characters)
        for note in ("a\nb", "a\u202eb"):
            line = client.post("/budgets", data={**form, "note": note, "_xsrf": token})
            assert line.status_code == 400 and "note holds a control or invisible character" in line.text
        both = client.post("/budgets", data={**form, "scope": "global", "_xsrf": token})
        assert both.status_code == 400 and "the global cap names no judge" in both.text
        assert len(site.ledger.budgets.history()) == 5 and site.ledger.budgets.budgets()["judge:exact"] == 3.25

        # A new budget within a schedule, then removed.
        new = {**form, "schedule": "minutely", "usd_per_day": "0", "note": "", "_xsrf": token}
        new_scope = "schedule:minutely/judge:exact"
        assert client.post("/budgets", data=new).status_code == 200
        assert site.ledger.budgets.budgets()[new_scope] == 0.0
        assert client.post("/budgets", data={**new, "action": "remove"}).status_code == 200
        assert new_scope not in site.ledger.budgets.budgets()
        gone = site.ledger.budgets.history()[0]
        assert (gone.scope, gone.old_usd, gone.new_usd, gone.who, gone.via) == (new_scope, 0.0, None, "ops", "flower")
        again = client.post("/budgets", data={**new, "action": "remove"})
        assert again.status_code == 400 and f"there is no budget for {new_scope} to remove" in again.text


def test_a_read_only_flower_shows_the_page_and_changes_nothing(tmp_path: Path, redis_url: str,
                                                               sqlite_url: str) -> None:
    with running_site(tmp_path, redis_url, sqlite_url, FLOWER_READ_ONLY="true") as site, \
            httpx.Client(base_url=site.base, auth=AUTH, timeout=10) as client:
        page = client.get("/budgets")
        assert page.status_code == 200 and '<table id="budgets"' in page.text
        form = {"scope": "global", "usd_per_day": "1", "action": "set", "_xsrf": xsrf_of(page.text)}
        refused = client.post("/budgets", data=form)
        assert refused.status_code == 403 and "Read only mode is enabled" in refused.text
        assert site.ledger.budgets.budgets()["global"] == 10.0 and len(site.ledger.budgets.history()) == 4


def queued_kwargs(redis_url: str) -> list[dict[str, object]]:
    """The kwargs of the budget task's messages waiting in the ``local`` queue (no worker runs here)."""
    client = redis.Redis.from_url(redis_url)
    try:
        found = []
        for raw in client.lrange("local", 0, -1):
            message = json.loads(raw)
            if message["headers"]["task"] == "judgeq.budget_set":
                _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
                found.append(kwargs)
        return found
    finally:
        client.close()


def test_flowers_task_api_records_the_logged_in_user(site: Site, redis_url: str) -> None:
    def post(path: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(site.base + path, json=body, auth=AUTH, timeout=10)

    sent = post("/api/task/async-apply/judgeq.budget_set", {"kwargs": {"judge": "exact", "usd_per_day": 4}})
    assert sent.status_code == 200, sent.text
    by_name = post("/api/task/send-task/judgeq.budget_set", {"kwargs": {"judge": "exact", "usd_per_day": 5,
                                                                          "who": "ops"}})
    assert by_name.status_code == 200, by_name.text
    queued = sorted(queued_kwargs(redis_url), key=lambda kwargs: str(kwargs["usd_per_day"]))
    assert queued == [{"judge": "exact", "usd_per_day": 4, "who": "ops"}, {"judge": "exact", "usd_per_day": 5, "who": "ops"}]
    # Another who, by name or by position, under any spelling of the task's name: refused, nothing queued.
    for path in ("/api/task/async-apply/judgeq.budget_set", "/api/task/async-apply/judgeq%2Ebudget_set",
                 "/api/task/send-task/judgeq.budget_set", "/api/task/apply/judgeq.budget_set"):
        refused = post(path, {"kwargs": {"judge": "exact", "usd_per_day": 6, "who": "the-ceo"}})
        assert refused.status_code == 400, (path, refused.text)
        assert "who is recorded as the logged-in Flower user ('ops'); leave who out" in refused.text
    positional = post("/api/task/async-apply/judgeq.budget_set", {"args": ["exact", 6, None, False, "the-ceo"]})
    assert positional.status_code == 400 and "kwargs only" in positional.text
    assert len(queued_kwargs(redis_url)) == 2
    # Other tasks are Flower's as before (a who there is theirs), and the API still wants the login.
    assert post("/api/task/async-apply/judgeq.nope", {"kwargs": {"who": "x"}}).status_code == 404
    anonymous = httpx.post(site.base + "/api/task/async-apply/judgeq.budget_set", json={"kwargs": {}}, timeout=10)
    assert anonymous.status_code == 401


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        pytest.fail("the browser test needs Debian's chromium: scripts/system-packages installs it")
    return found


def browse(site: Site, *flags: str) -> subprocess.CompletedProcess[str]:
    url = f"http://{AUTH[0]}:{AUTH[1]}@{site.base.removeprefix('http://')}/budgets"
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1280,1000", *flags, url], capture_output=True, text=True, timeout=90)


def test_a_browser_renders_the_page_with_flowers_navbar(site: Site, tmp_path: Path) -> None:
    dom = browse(site, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    # What the browser built: Flower's navbar with the link, the table of budgets, the charts, the form.
    link = r'<a class="nav-link active" href="/budgets" aria-current="page">Budgets</a>'
    assert re.search(link, text), text[:3000]
    assert re.search(r'<a class="nav-link" href="/workers">Workers</a>', text)
    assert '<table id="budgets"' in text and text.count("<tr data-scope=") == 4
    assert text.count('<svg class="bq-chart"') == 4 and '<form method="post" action="/budgets"' in text
    assert "<script>alert(1)</script>" not in text  # the markup judge's name stayed text
    shot = tmp_path / "flower-budgets.png"
    taken = browse(site, f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.stat().st_size > 20_000, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- in-process: the page's figures and the navbar, without Flower or a browser ------------------------------


def test_the_pages_figures_add_up_to_what_the_budget_counts(tmp_path: Path, sqlite_url: str) -> None:
    from scheduler.flower_pages.figures import HEIGHT, TOP, gather_page

    (tmp_path / "judgeq.toml").write_text(CONFIG)
    now = datetime.now(UTC)
    with Ledger(sqlite_url) as ledger:
        spent = seed(ledger, now)
        page = gather_page(ledger, tmp_path / "judgeq.toml", now, changes=3, decisions=5)
    assert [v.line.scope for v in page.scopes] == ["global", f"judge:{MARKUP}", "judge:exact",
                                                  "schedule:minutely/judge:exact"]
    assert len(page.changes) == 3 and len(page.decisions) == 1 and page.judges[0] == "exact"
    assert page.schedules == ("minutely",)
    view = page.scopes[2]
    assert math.isclose(sum(view.hourly_usd), spent) and math.isclose(view.line.spent_usd, spent)
    assert len(view.chart.bars) == len(view.hourly_usd) == math.ceil(page.report.elapsed_h)
    assert view.share == pytest.approx(view.line.projected_usd / 2.0)
    # The running total ends, now, at what is spent; the budget line sits at $2 on an axis that holds the projection.
    top = float(view.chart.y_ticks[-1].label.strip("$").replace(",", ""))
    assert top >= max(2.0, view.line.projected_usd)
    last_x, last_y = map(float, view.chart.spent.split()[-1].split(","))
    assert last_x == pytest.approx(view.chart.now_x, abs=0.02)
    plot_h = view.chart.bottom - TOP
    assert last_y == pytest.approx(view.chart.bottom - plot_h * spent / top, abs=0.02)
    assert view.chart.budget_y == pytest.approx(view.chart.bottom - plot_h * 2.0 / top, abs=0.02)
    assert 0 < view.chart.budget_y < HEIGHT
    assert page.scopes[1].hourly_usd == tuple(0.0 for _ in page.scopes[1].hourly_usd)  # a judge with no rows


def test_the_budgets_link_goes_into_flowers_own_navbar() -> None:
    import flower

    from scheduler.flower_pages.templates import FlowerTemplates, with_budgets_link

    folder = Path(flower.__file__).parent / "templates"
    navbar = (folder / "navbar.html").read_text()
    linked = with_budgets_link(navbar)
    assert linked.count("Budgets</a>") == 1 and linked.count("<li") == navbar.count("<li") + 1
    assert linked.index("Broker</a>") < linked.index("Budgets</a>") < linked.index("app-nav-secondary")
    assert with_budgets_link("<nav>another layout</nav>") == "<nav>another layout</nav>"  # left as it is
    loader = FlowerTemplates(str(folder))
    assert "reverse_url('budgets')" in loader.load("navbar.html").code
    assert loader.load("workers.html").name == "workers.html"  # Flower's other templates, as Flower's loader gives
    assert "budgets-page" in loader.load("budgets.html").code
