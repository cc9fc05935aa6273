"""``judgeq flower``: Flower's own command, run with judgeq's pages and handlers added to its app.

How pages are added, and why this way. Flower 2.2 offers no hook for
handlers: ``flower.app.Flower.__init__`` sets its ``handlers`` to Flower's
own list whatever it is passed, and the ``flower`` Celery command builds
that app and starts it in one function. Tornado's supported way to add
routes to a built application is ``Application.add_handlers(host_pattern,
handlers)``, which puts the new host rule *ahead* of the routes the app was
built with, so a route given here wins over Flower's same route. So
:func:`serve` runs the steps of Flower's command (``flower.command.flower``:
its own option, environment and settings functions, then ``Flower(...)``,
its HTTP server, its banner, its loop) and, between building the app and
starting it, adds judgeq's routes (:func:`routes`): the Budgets page and
Flower's three task-running API routes, taken over for ``judgeq.budget_set``
(``budget_api``). Flower's templates load through ``templates.FlowerTemplates``
(tornado's ``template_loader`` setting), which adds the Budgets link to
Flower's navbar. The alternatives were worse: patching ``flower.command.Flower``
would change a module global of Flower's, and a proxy in front of Flower would
be a second server to run and secure. ``flower>=2.2,<3`` is pinned, and
``tests/test_flower_budgets.py`` starts the real process, so a Flower that
renames these steps fails there.
"""

from __future__ import annotations

import atexit
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from .budgets import Site


def routes(site: Site, url_prefix: str = "") -> list[Any]:
    """judgeq's routes in Flower, each under Flower's ``--url_prefix`` when it has one."""
    from flower.app import rewrite_handler
    from tornado.web import url

    from .budget_api import BudgetApply, BudgetAsyncApply, BudgetSend
    from .budgets import BudgetsPage

    own = [
        url(r"/budgets", BudgetsPage, {"site": site}, name="budgets"),
        # Flower's own patterns (flower/urls.py), so no spelling of the task's name reaches Flower's handlers.
        (r"/api/task/apply/(.+)", BudgetApply),
        (r"/api/task/async-apply/(.+)", BudgetAsyncApply),
        (r"/api/task/send-task/(.+)", BudgetSend),
    ]
    return [rewrite_handler(r, url_prefix) for r in own] if url_prefix else own


def serve(celery_app: Celery, argv: list[str], site: Site) -> int | None:
    """Run Flower (``argv``: its options, as ``scheduler.fleet.flower_argv`` gives them) on ``celery_app`` with
    judgeq's pages, until it is stopped; None, as Flower's command returns."""
    from flower import command
    from flower.app import Flower
    from tornado.options import options

    from .templates import FlowerTemplates

    command.apply_env_options()
    command.apply_options("flower", argv)
    command.extract_settings()
    command.setup_logging()
    settings = dict(command.settings)
    settings["template_loader"] = FlowerTemplates(settings["template_path"])
    flower_app = Flower(capp=celery_app, options=options, **settings)
    flower_app.add_handlers(r".*", routes(site, options.url_prefix or ""))

    atexit.register(flower_app.stop)
    signal.signal(signal.SIGTERM, command.sigterm_handler)
    port = flower_app.start_http_server()
    command.print_banner(celery_app, "ssl_options" in settings, port)
    try:
        flower_app.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return None
