"""Plans sharing a budget take turns: two windows planned at once never reserve past the budget together.

Two minute windows near the day's end (no lateness; 23:56 and 23:57, with
23:58 still to come that day and 23:59, which closes at midnight, the next
day's): one's share of the money left is 1/2, the other's 1/3. Planned in turn (either order) they reserve 1/2 + 1/3 x 1/2
= 1/3 + 1/2 x 2/3 = $0.667 of $1; planned on the same $1 left (no lock),
$0.833.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from judges.config import load_config
from ledger.models import Run
from ledger.store import Ledger
from online.budget.pacer import window_planner
from online.sampling import parse_policy
from online.schedules import Schedule
from online.windows import parse_size, window_at

NOW = datetime(2026, 11, 29, 23, 59, 30, tzinfo=UTC)


@pytest.mark.timeout(60)
def test_two_plans_at_once_reserve_the_budget_once(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    ledger.budgets.set_budget("judge:exact", 1.0, who="test", via="cli")
    schedule = Schedule(name="prod", source="prod", judges=("exact",), size=parse_size("1m"),
                        every=timedelta(minutes=1), lateness=timedelta(0), policy=parse_policy({"rate": 1.0}, "test"))
    judge = load_config(None).resolve("exact")
    windows = [window_at(schedule.size, NOW - timedelta(minutes=k)) for k in (2, 3)]
    for k, window in enumerate(windows):
        ledger.runs.create_run_if_absent(Run(id=f"o-run-{k}", kind="online", dataset_name="prod", window=window.id,
                                        judges={"exact": judge.to_message()}, status="running"))
    start = threading.Barrier(2)
    rates: dict[str, float] = {}
    failures: list[BaseException] = []

    def plan(k: int) -> None:
        try:
            planner = window_planner(ledger, schedule, windows[k], NOW)
            start.wait()
            found = planner(judge, f"o-run-{k}", {"all": 1000})
            rates[f"o-run-{k}"] = (found or {}).get("all", -1.0)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=plan, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    reserved = ledger.budgets.outstanding_reservations(f"{NOW:%Y-%m-%d}", "exact")
    assert reserved == pytest.approx(2 / 3), f"the two plans reserved ${reserved:.4f} together, not in turn"
    assert len(rates) == 2 and all(rate > 0 for rate in rates.values())
