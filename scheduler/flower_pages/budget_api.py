"""Flower's task API for ``judgeq.budget_set``: the change is recorded as the logged-in user's.

Flower runs any registered task from ``POST /api/task/apply/NAME``,
``/api/task/async-apply/NAME`` and ``/api/task/send-task/NAME`` with the
JSON body's ``args`` and ``kwargs``. For ``judgeq.budget_set`` the kwarg
``who`` (who made the change, kept in ``budget_history``) would be whatever
the caller typed. These handlers take the same three routes ahead of
Flower's (``server.routes``), subclasses of Flower's own, so everything else
about them is Flower's; for that one task they set ``who`` to the logged-in
user. The rule, decided: a ``who`` the body gives is refused (400) unless it
is the logged-in user, rather than replaced without a word, so no caller
believes a name was recorded that was not; positional ``args`` are refused,
as they could carry ``who`` by position. The task name is compared after
tornado has unquoted the path, so ``judgeq%2Ebudget_set`` is caught too.

A message written to the broker directly (not through Flower) still carries
whatever ``who`` its writer chose: anyone who can write to Redis can run any
task; the workers treat such messages as untrusted input (README, "Flower").
"""

from __future__ import annotations

from typing import Any, Final

import tornado.web
from flower.api.tasks import TaskApply, TaskAsyncApply, TaskSend

from .login import LoginRequired

BUDGET_TASK: Final = "judgeq.budget_set"


class RecordsTheUser(LoginRequired):
    """Sets ``who`` of a ``judgeq.budget_set`` call to the logged-in user (see the module's docstring)."""

    path_args: list[str]

    def get_task_args(self) -> tuple[Any, Any, Any]:
        args, kwargs, options = super().get_task_args()  # type: ignore[misc]
        if self.path_args[0] != BUDGET_TASK:
            return args, kwargs, options
        user = self.logged_in()
        if args:
            raise tornado.web.HTTPError(400, f"{BUDGET_TASK} takes kwargs only: send "
                                             '{"kwargs": {"judge": "J", "usd_per_day": 20}}')
        if not isinstance(kwargs, dict):
            raise tornado.web.HTTPError(400, "kwargs must be a JSON object")
        if "who" in kwargs and kwargs["who"] != user:
            raise tornado.web.HTTPError(400, f"{BUDGET_TASK}: who is recorded as the logged-in Flower user "
                                             f"({user!r}); leave who out")
        return args, {**kwargs, "who": user}, options


class BudgetApply(RecordsTheUser, TaskApply):  # type: ignore[misc]
    """Flower's ``/api/task/apply/NAME``, ``who`` set for the budget task."""


class BudgetAsyncApply(RecordsTheUser, TaskAsyncApply):  # type: ignore[misc]
    """Flower's ``/api/task/async-apply/NAME``, ``who`` set for the budget task."""


class BudgetSend(RecordsTheUser, TaskSend):  # type: ignore[misc]
    """Flower's ``/api/task/send-task/NAME``, ``who`` set for the budget task."""
