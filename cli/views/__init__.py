"""What only commands print: runs, a run's status, judges, drift checks, promotions, distilled judges, windows.

The views a workflow of ``scheduler/`` prints as well (reports, gates, progress, budgets) stay beside it.
"""
