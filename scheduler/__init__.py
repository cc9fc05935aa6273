"""What the CLI's commands call: dataset loading, submit and resume, waiting, gates and reports, beat, exporters.

The command line itself (the typer app, its commands and their own views) is ``cli/``, which imports
this package and is imported by nothing here. Trace sources, sampling and the budget controller
live in ``online/``.
"""
