"""The run's corridor: the chunk message, the queues, dispatch, and one intake every run goes through.

Every way a run's items reach a judge (``judgeq submit``, an online window,
``judgeq resume``, the resend of chunks a killed worker lost) walks the same
steps, written once here (:mod:`runs.intake`): open the run, store its items
insert-if-absent, cut them into chunk messages and send those, mark the run
running, later done. What carries them (the Celery fleet or this process) is a
:class:`runs.dispatch.Dispatcher` the caller passes in; whether there is a
fleet is decided once, by :func:`runs.dispatch.fleet_mode`.

``runs`` imports ``judges``, ``ledger`` and the error root ``judgeq.errors`` only: never ``online``, ``workers``
or ``scheduler`` (``tests/test_runs_imports.py`` holds it to that), so both the CLI and
a worker (beat's online tick, the Celery adapter in ``workers/``) can use it.
"""
