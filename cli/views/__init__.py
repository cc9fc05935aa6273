"""Every view of the CLI: runs, a run's status and report, gates, progress, budgets, drift, judges, windows.

``scheduler/`` prints no table, bar or JSON; where one of its workflows shows something
mid-way (progress while it waits, the scorecard before the command ends), it
calls the ``scheduler.reporting.Reporter`` its command passed, which
:class:`cli.views.reporter.TerminalReporter` implements with these views.
"""
