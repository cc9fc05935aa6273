"""The Budgets page (``/budgets``): each budget's day, the form that sets one, and the history.

GET shows the page. POST sets, changes or removes one budget through the
CLI's checked path (``reads.set_budget``, ``online.budget.setting.set_checked``:
one rule for the amount, the names and the note), recorded as made by the
logged-in Flower user ``via flower``; the controller applies it at its next
tick, as after ``judgeq budget set``. A value it refuses is shown on the page
(status 400) and changes nothing; one it takes answers with a redirect
to the page showing the change (Post/Redirect/Get, so a reload sends
nothing again); under Flower's ``--read_only`` a POST is a
403, as Flower's task API's is. Login and the ``_xsrf`` token are
:class:`login.Page`'s to require; the ledger is read and written in Flower's
thread pool, never on its event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tornado.ioloop import IOLoop
from tornado.web import HTTPError

from ..budgets import change_json, change_words, usd_text
from . import reads
from .figures import gather_page
from .login import Page

if TYPE_CHECKING:
    from ledger.store import Ledger

    from ..settings import CliSettings

T = TypeVar("T")


class Site:
    """What judgeq's pages in a Flower process share: the process's settings and, once opened, its ledger."""

    def __init__(self, settings: CliSettings) -> None:
        self.settings = settings
        self._ledger: Ledger | None = None
        self._opening = threading.Lock()

    @property
    def config(self) -> Path:
        return self.settings.config

    def ledger(self) -> Ledger:
        """The ledger, opened on first use (in a pool thread: opening may migrate an empty database)."""
        with self._opening:  # pool threads: one Ledger (one engine) for the process
            if self._ledger is None:
                self._ledger = self.settings.ledger()
            return self._ledger


@dataclass(frozen=True)
class Form:
    """What the form was given (kept to show it again after a refusal)."""

    scope: str = "judge"  # "judge" (with judge, optional schedule) or "global"
    judge: str = ""
    schedule: str = ""
    usd_per_day: str = ""
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a POST did: a line for the page, whether it was refused, and the history row it wrote."""

    message: str
    refused: bool = False
    change_id: int | None = None


def form_amount(text: str) -> Any:
    """The amount typed, as the number it reads as, for ``check_usd`` to judge (a whole number exactly, so
    10**400 is "more than the most", not infinity); the text itself when it is no number, which the check
    then refuses as text."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def apply_form(site: Site, form: Form, action: str, who: str) -> Outcome:
    """Set (``action`` "set") or remove ("remove") the budget ``form`` names, as ``who``; what happened."""
    from ledger.budget_rows import budget_scope
    from online.errors import OnlineConfigError

    if action not in ("set", "remove"):
        return Outcome("choose Set or Remove", refused=True)
    judge = form.judge or None
    schedule = form.schedule or None
    if form.scope == "global":
        if judge is not None or schedule is not None:
            return Outcome("the global cap names no judge or schedule: clear them, or choose a judge's budget",
                           refused=True)
    elif judge is None:
        return Outcome("name the judge whose budget this is (or choose the global cap)", refused=True)
    usd = None if action == "remove" else form_amount(form.usd_per_day)
    try:
        change = reads.set_budget(site.ledger(), site.config, judge=judge, schedule=schedule, usd=usd, who=who,
                                  note=form.note)
    except OnlineConfigError as exc:
        return Outcome(str(exc), refused=True)
    if change is None:
        return Outcome(f"there is no budget for {budget_scope(judge, schedule)} to remove", refused=True)
    return Outcome(change_line(change), change_id=change.id)


def change_line(change: Any) -> str:
    """What a change did, as the page says it after the form was sent."""
    words = change_words(change_json(change), removed="removed", note=False)
    return f"budget {change.scope}: {words}; the controller applies it at its next tick"


class BudgetsPage(Page):
    """``GET /budgets`` and ``POST /budgets`` (see the module's docstring)."""

    site: Site

    def initialize(self, site: Site) -> None:
        self.site = site

    async def get(self) -> None:
        await self._show(Form(scope=self._arg("scope") or "judge", judge=self._arg("judge"),
                              schedule=self._arg("schedule")), None, shown_change=self._arg("change"))

    async def post(self) -> None:
        if self.application.options.read_only:  # Flower's --read_only: nothing is changed through it
            raise HTTPError(403, "Read only mode is enabled")
        form = Form(**{name: self._arg(name, body=True) for name in Form.__dataclass_fields__})
        outcome = await self._blocking(apply_form, self.site, form, self._arg("action", body=True),
                                       self.logged_in())
        if outcome.refused:
            self.set_status(400)
            await self._show(form, outcome)
        else:  # Post/Redirect/Get: reloading the page shows the change again, it does not send it again
            self.redirect(f"{self.reverse_url('budgets')}?change={outcome.change_id}", status=303)

    async def _show(self, form: Form, outcome: Outcome | None, shown_change: str = "") -> None:
        page = await self._blocking(lambda: gather_page(self.site.ledger(), self.site.config, datetime.now(UTC)))
        if outcome is None and shown_change:  # after a redirect: the change it made, from the history
            made = next((c for c in page.changes if str(c.id) == shown_change), None)
            outcome = None if made is None else Outcome(change_line(made), change_id=made.id)
        self.render("budgets.html", page=page, form=form, outcome=outcome, user=self.logged_in(),
                    usd=usd_text)

    def _arg(self, name: str, body: bool = False) -> str:
        """A form field as typed (tornado's own getter: Flower's would HTML-escape it before it is stored)."""
        getter = self.get_body_argument if body else self.get_query_argument
        return str(getter(name, default="") or "")

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await IOLoop.current().run_in_executor(None, function, *args)
