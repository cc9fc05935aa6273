"""judgeq's pages in Flower's web UI: the Budgets page, and Flower's task API recording who sets a budget.

``judgeq flower`` (``scheduler.fleet.run_flower``) runs Flower's own command
with these added (``server.py`` says how, and why that way): ``/budgets``
(``budgets.py``: each budget's day, its chart and rates, the form, the
history; figures gathered in ``figures.py``, the ledger read and written only
through ``reads.py``), a link to it in Flower's navbar (``templates.py``), and
the budget task's API routes (``budget_api.py``). Every request needs Flower's
login and every POST tornado's ``_xsrf`` token (``login.py``).
"""
