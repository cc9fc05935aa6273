"""The online regime: windows of live production traces, sampled on purpose and judged like a dataset.

A window (an hour, a day, an ISO week of a trace source) is read, sampled
deterministically per judge and stratum, and enqueued as the same chunk tasks
the offline path sends, into the same ledger, with the window id as the
dataset version and the sampling weight on every row. ``online`` may import
``judges``, ``ledger`` and ``runs`` (the chunks' intake and dispatch protocol), never ``workers`` (the
Celery adapter, which imports online) or ``scheduler``.
"""
