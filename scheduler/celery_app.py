"""``celery -A scheduler.celery_app``: judgeq's Celery app for Celery's own command line (inspect, control, report).

Celery's ``-A`` names a module or ``module:attribute`` and takes the *object*
found there as the app: it looks for an attribute ``app`` (or ``celery``) and
never calls a factory (``celery.app.utils.find_app``, then
``celery.bin.celery`` reads ``app.user_options``), so ``-A workers.app:create_app``
cannot work. This module is therefore an entry point that builds the app at
import, as the CLI's root callback builds a command's settings: the process's
one settings object from the ``JUDGEQ_*`` environment (``CliSettings``), read
here and nowhere below, and the app of a worker (``workers.app.create_worker``:
the tasks registered, so ``inspect registered`` and ``celery worker`` see them).
Nothing in judgeq imports it; ``judgeq worker``, ``beat`` and ``flower`` build
their app in ``scheduler.fleet.run_celery``, from their own flags.

Start workers with ``judgeq worker`` (its checks and per-queue defaults,
``scheduler.fleet``); this target is for the tools an operator brings:
``celery -A scheduler.celery_app inspect ping``, ``status``, ``report``, ``control``.
"""

from __future__ import annotations

from workers.app import create_worker

from .settings import CliSettings

#: The environment's settings, read once, at this entry point.
settings = CliSettings()
#: What ``celery -A scheduler.celery_app`` finds (Celery looks for ``app`` first).
app = create_worker(settings)
