"""The front door of judgeq: the ``judgeq`` command line (``cli.main``), its commands and their views.

Thin by design: a command parses its options, takes its settings from typer's
context and calls one library function (in ``scheduler/``, ``online/``,
``ledger/``); what it prints is a view's. Nothing below the CLI imports it.
"""
