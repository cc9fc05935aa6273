"""A cost owner in a real browser: Flower's Budgets page driven in Debian's headless chromium through Selenium.

The fleet is real: ``judgeq flower`` (basic auth), a ``judgeq worker`` and
``judgeq beat`` (a one-minute schedule ticking every 2 s, the budget
controller every 2 s) on Redis and PostgreSQL, as in
tests/test_budget_flower.py. Selenium drives chromium through Debian's
chromedriver (nothing is downloaded). The browser logs in (the credentials
in the address, as a person answering the login prompt sends them), opens
the Budgets page from Flower's navbar, sets a budget through the form, and
the page then shows the next tick's rates; the change is in the history
with the logged-in user. A browser without the login, and a form sent
without its anti-forgery token, change nothing. Screenshots of each step go
to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import Ledger

from .processes import Worker, base_env, wait_until
from .test_budget_flower import AUTH, CONFIG, SCHEDULE, Flower, budget_rates, write_traces
from .test_online_beat import Beat

pytestmark = pytest.mark.timeout(180)


def browser() -> object:
    """Headless chromium under Selenium, through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: scripts/system-packages "
                    "installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1400", "--hide-scrollbars"):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser online
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


@pytest.fixture
def fleet(tmp_path: Path, redis_url: str, pg_url: str) -> Iterator[tuple[Flower, Ledger, Worker, Beat]]:
    (tmp_path / "judgeq.toml").write_text(CONFIG)
    write_traces(tmp_path / "traces.jsonl", datetime.now(UTC))
    env = base_env(JUDGEQ_BROKER_URL=redis_url, JUDGEQ_LEDGER_URL=pg_url, JUDGEQ_CONFIG=str(tmp_path / "judgeq.toml"),
                   JUDGEQ_BUDGET_TICK_S="2", FLOWER_BASIC_AUTH=":".join(AUTH))
    with Ledger(pg_url) as ledger:
        ledger.budgets.budgets()  # the schema, before three processes race to create it
        worker = Worker("local", env, "--concurrency", "2")
        beat = Beat(env)
        flower = Flower(env, tmp_path / "flower.log")
        try:
            worker.wait_ready()
            wait_until(flower.up, 60, "Flower's healthcheck")
            wait_until(lambda: len(ledger.spend.recent_window_counts(SCHEDULE, "exact",
                                                               datetime.now(UTC) - timedelta(hours=1))) >= 2,
                       30, lambda: f"two windows judged; beat:\n{beat.log()}")
            yield flower, ledger, worker, beat
        finally:
            flower.stop()
            beat.stop()
            worker.stop()


def test_a_cost_owner_sets_a_budget_in_the_browser_and_sees_the_next_ticks_rates(
        fleet: tuple[Flower, Ledger, Worker, Beat], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    flower, ledger, _, _ = fleet
    host = flower.base.removeprefix("http://")
    anonymous = browser()
    driver = browser()
    try:
        # No login: Flower answers 401 and shows no page; nothing can be sent from it.
        anonymous.get(f"http://{host}/budgets")  # type: ignore[attr-defined]
        assert "Budgets today" not in anonymous.page_source  # type: ignore[attr-defined]
        assert not anonymous.find_elements(By.ID, "budget-form")  # type: ignore[attr-defined]

        # Logged in: Flower's own page, then the Budgets link in its navbar.
        driver.get(f"http://{AUTH[0]}:{AUTH[1]}@{host}/workers")  # type: ignore[attr-defined]
        driver.find_element(By.LINK_TEXT, "Budgets").click()  # type: ignore[attr-defined]
        wait_until(lambda: driver.current_url.endswith("/budgets"), 10, "the Budgets page")  # type: ignore[attr-defined]
        assert f"Logged in as {AUTH[0]}" in driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
        driver.save_screenshot(str(tmp_path / "1-no-budget.png"))  # type: ignore[attr-defined]
        assert budget_rates(ledger) == {} and ledger.budgets.history() == []

        def send(usd: str, note: str) -> None:
            form = driver.find_element(By.ID, "budget-form")  # type: ignore[attr-defined]
            form.find_element(By.ID, "judge").clear()
            form.find_element(By.ID, "judge").send_keys("exact")
            form.find_element(By.ID, "usd_per_day").clear()
            form.find_element(By.ID, "usd_per_day").send_keys(usd)
            form.find_element(By.ID, "note").clear()
            form.find_element(By.ID, "note").send_keys(note)
            form.find_element(By.CSS_SELECTOR, 'button[value="set"]').click()

        # The form, as a person fills it in: the change is recorded as the logged-in user's.
        send("1.5", "pilot week")
        wait_until(lambda: "?change=" in driver.current_url, 10, "the page after the change")  # type: ignore[attr-defined]
        outcome = driver.find_element(By.ID, "outcome").text  # type: ignore[attr-defined]
        assert "budget judge:exact: none -> $1.50/day by ops via flower" in outcome, outcome
        (change,) = ledger.budgets.history()
        assert (change.scope, change.new_usd, change.who, change.via, change.note) == (
            "judge:exact", 1.5, "ops", "flower", "pilot week")
        changes = driver.find_element(By.ID, "changes").text  # type: ignore[attr-defined]
        assert "judge:exact" in changes and "ops" in changes and "pilot week" in changes

        # The next tick plans with it (a local judge is free: every trace), and the page shows the rates.
        wait_until(lambda: budget_rates(ledger).get("all") is not None, 20, "the budget's rates")
        assert budget_rates(ledger)["all"].rate == 1.0

        # Cut to nothing: the tick after the change sets rate 0, and the page, reloaded, says so.
        send("0", "stop for the audit")
        wait_until(lambda: len(ledger.budgets.history()) == 2, 10, "the second change")
        wait_until(lambda: budget_rates(ledger)["all"].rate == 0.0, 20, "rate 0 after the cut")
        driver.refresh()  # type: ignore[attr-defined]  (a GET: Post/Redirect/Get, nothing is sent again)
        assert len(ledger.budgets.history()) == 2
        row = driver.find_element(By.CSS_SELECTOR, 'tr[data-scope="judge:exact"]').text  # type: ignore[attr-defined]
        assert "0.00" in row, row
        rates = driver.find_element(By.CSS_SELECTOR, "table.rates").text  # type: ignore[attr-defined]
        assert "minutely exact all 0 budget" in rates, rates
        driver.save_screenshot(str(tmp_path / "2-cut-to-zero.png"))  # type: ignore[attr-defined]

        # A form sent without its anti-forgery token (as another site's page would send it): refused.
        driver.execute_script(  # type: ignore[attr-defined]
            "document.querySelector('#budget-form input[name=_xsrf]').remove();")
        send("50", "forged")
        assert "403" in driver.title or "403" in driver.page_source  # type: ignore[attr-defined]
        assert len(ledger.budgets.history()) == 2 and ledger.budgets.budgets() == {"judge:exact": 0.0}
        assert budget_rates(ledger)["all"].rate == 0.0
    finally:
        anonymous.quit()  # type: ignore[attr-defined]
        driver.quit()  # type: ignore[attr-defined]
