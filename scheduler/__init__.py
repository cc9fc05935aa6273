"""The front door of judgeq: the CLI, dataset loading, submit and resume, gates and reports, beat.

Trace sources, sampling and the budget controller live in ``online/``, which the CLI calls.
"""
